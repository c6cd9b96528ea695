#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
#
# debian/substvars.sh "FULL COMMANDS" "PLUGIN COMMANDS"
# Writes the substvars of both packages.  The full suite provides and
# replaces thin-provisioning-tools only when it has every command of that
# package (debian/thin-provisioning-tools.commands); until then it says it
# is partial, names what it lacks, and only conflicts with it (both use the
# same file names).
set -eu
full=$1 plugin=$2
list=debian/thin-provisioning-tools.commands
version=$(sed -n 's/^version //p' "$list")
missing=
for c in $(grep -v -e '^#' -e '^version ' "$list"); do
	case " $full " in
	*" $c "*) ;;
	*) missing="$missing${missing:+, }$c" ;;
	esac
done
out=debian/thinp-tools.substvars
touch "$out"
sed -i '/^thinp:/d' "$out"
if [ -z "$missing" ]; then
	cat >>"$out" <<EOT
thinp:Provides=thin-provisioning-tools (= $version)
thinp:Replaces=thin-provisioning-tools
EOT
	coverage="It has every command of thin-provisioning-tools $version and replaces that package."
else
	cat >>"$out" <<EOT
thinp:Provides=
thinp:Replaces=
EOT
	coverage="PARTIAL: this build lacks $missing of thin-provisioning-tools $version, so it neither provides nor replaces that package; it only conflicts with it, as both install the same file names."
fi
# TEXT as lines of the extended description of at most 72 characters
wrap() {
	echo "$1" | fold -s -w 72 | sed 's/ *$//' |
		awk 'NR > 1 { printf "${Newline} " } { printf "%s", $0 }'
}
echo "thinp:Coverage=$(wrap "$coverage")" >>"$out"
out=debian/thinp-tools-plugin.substvars
touch "$out"
sed -i '/^thinp:/d' "$out"
echo "thinp:Commands=$(wrap "$(echo $plugin | sed 's/ /, /g')")" >>"$out"
echo "debian/substvars.sh: full suite lacks: ${missing:-nothing}; plugin commands: $plugin"
