#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Packaging tests (Debian 12, as root): the release tarball (make
# distcheck), the Debian packages (dpkg-buildpackage, lintian), and both
# installs in throwaway roots made from this machine's apt sources:
#   - the plugin package beside Debian's thin-provisioning-tools 0.9.0: no
#     file conflict, thin_merge is ours and thin_check Debian's, our merge
#     passes Debian's thin_check, bash completes "thin_merge --or<TAB>",
#     purging leaves Debian's package intact;
#   - the full suite alone: every command answers -h and -V, completion,
#     purging removes every file.
# The base root is cached as a tarball in $THINP_PKG_CACHE
# (/var/cache/thinp-tools/pkgtest).  One line per check (PASS/FAIL/SKIP),
# then "N passed, N failed[, N skipped]"; exit 0 iff nothing failed.
# THINP_PKG_KEEP=1 keeps the work dir; its log is kept as
# /var/tmp/thinp-pkg.log.
set -u
cd "$(dirname "$0")/.." || exit 1
top=$(pwd)
cache=${THINP_PKG_CACHE:-/var/cache/thinp-tools/pkgtest}
passed=0 failed=0 skipped=0

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
skip() { echo "SKIP $1: $2"; skipped=$((skipped + 1)); }
finish() {
	if [ "$skipped" -gt 0 ]; then
		echo "$passed passed, $failed failed, $skipped skipped"
	else
		echo "$passed passed, $failed failed"
	fi
	[ "$failed" = 0 ]
	exit
}
# check NAME COMMAND...: PASS when COMMAND succeeds; its output goes to the
# log, and its tail to the FAIL line's detail.
check() {
	name=$1
	shift
	if "$@" >"$work/check.out" 2>&1; then
		pass "$name"
	else
		fail "$name" "$(tail -n 5 "$work/check.out" | tr '\n' '|')"
	fi
	cat "$work/check.out" >>"$work/log"
}

if [ "$(id -u)" != 0 ]; then
	skip packaging "needs root (apt-get, dpkg-buildpackage, chroot)"
	finish
fi

work=$(mktemp -d /var/tmp/thinp-pkg.XXXXXX) || exit 1
tmux_socket=thinp-pkg-$$
cleanup() {
	tmux -L "$tmux_socket" kill-server 2>/dev/null
	# the log outlives the work dir
	[ -f "$work/log" ] && cp "$work/log" /var/tmp/thinp-pkg.log
	if [ -n "${THINP_PKG_KEEP:-}" ]; then
		echo "# work dir kept: $work"
	else
		rm -rf --one-file-system "$work"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM
echo "# work dir: $work (log: $work/log)"

# --- what the tests need ------------------------------------------------------
need="debhelper lintian mmdebstrap bash-completion tmux fakeroot man-db
      autoconf automake build-essential python3 libexpat1-dev liburing-dev
      libaio-dev libgtest-dev googletest thin-provisioning-tools"
missing=
for p in $need; do
	dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "# installing$missing"
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends $missing; } >>"$work/log" 2>&1 ||
		{ fail setup "could not install$missing"; finish; }
fi

# --- a clean tree: the files git knows, as in a fresh clone -------------------
# clean_tree DIR: the tracked and the new, not ignored, files of this tree
clean_tree() {
	mkdir -p "$1" &&
		git ls-files -z --cached --others --exclude-standard |
		xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
		tar -cf - --null -T - | tar -C "$1" -xf -
}
src=$work/src/thinp-tools-0.1.0
deb=$work/deb/thinp-tools-0.1.0
clean_tree "$src" && clean_tree "$deb" || { fail setup "could not copy the tree"; finish; }

if [ -n "${THINP_PKG_DEBS:-}" ]; then
	# (for working on the install tests) the .debs of an earlier run
	full_deb=$(ls "$THINP_PKG_DEBS"/thinp-tools_*.deb | head -1)
	plugin_deb=$(ls "$THINP_PKG_DEBS"/thinp-tools-plugin_*.deb | head -1)
	skip "tarball and package builds" "THINP_PKG_DEBS=$THINP_PKG_DEBS"
else
	# --- man pages ---------------------------------------------------------------
	bad=
	for m in "$src"/man8/*.8; do
		out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$m" 2>&1 >/dev/null)
		[ -z "$out" ] || bad="$bad $(basename "$m"): $out;"
	done
	[ -z "$bad" ] && pass "man --warnings: every page" || fail "man --warnings" "$bad"

	# --- autotools: configure --help, make distcheck ------------------------------
	(cd "$src" && autoreconf -fi) >>"$work/log" 2>&1 || { fail autoreconf "see $work/log"; finish; }
	help=$("$src/configure" --help)
	undocumented=
	for opt in $(sed -n 's/^AC_ARG_\(ENABLE\|WITH\)(\[\([^]]*\)\].*/\1:\2/p' "$src/configure.ac"); do
		kind=${opt%%:*} name=${opt#*:}
		case $kind in
		ENABLE) pat="--enable-$name\|--disable-$name" ;;
		*) pat="--with-$name\|--without-$name" ;;
		esac
		echo "$help" | grep -q -e "^ *\($pat\)\b" || undocumented="$undocumented $name"
	done
	[ -z "$undocumented" ] && pass "configure --help documents every switch" ||
		fail "configure --help" "not documented:$undocumented"

	# distcheck: the tarball builds out of tree (VPATH, read-only sources),
	# passes the unit tests, installs, and uninstalls to nothing.  Only the
	# unit tests here, to keep this short: the functional tests run in the
	# package build below, and the tarball holds every file they need (it
	# holds every file of the tree, checked next).  With no TESTS=, make
	# distcheck runs the functional and kernel tests too.
	mkdir -p "$work/dist"
	check "make distcheck (VPATH, read-only sources, unit tests, install, uninstall)" \
		sh -c "cd '$work/dist' && '$src/configure' -q && make -j2 distcheck TESTS=tests/unit-tests"
	tarball=$work/dist/thinp-tools-0.1.0.tar.gz
	if [ -f "$tarball" ]; then
		# every file of the tree but the CI's and git's own; no caches
		absent=$( (cd "$deb" && find . -type f ! -path './.ci/*' ! -name .gitignore ! -name .gitkeep |
			sed 's|^\./||' | sort) | comm -23 - "$(tar -tzf "$tarball" |
			sed -n 's|^thinp-tools-0.1.0/||p' | sort >"$work/tarball.list"; echo "$work/tarball.list")")
		stray=$(grep -e __pycache__ -e '\.pyc$' -e '^obj-' -e '^debian/\.debhelper' "$work/tarball.list" | head -3)
		[ -z "$absent$stray" ] && pass "tarball holds every file of the tree, no caches" ||
			fail "tarball contents" "missing: $(echo $absent) stray: $(echo $stray)"
	fi

	# --- Debian packages -----------------------------------------------------------
	# From the clean tree: dpkg-buildpackage runs the unit and functional tests.
	(cd "$deb" && dpkg-checkbuilddeps) >>"$work/log" 2>&1 ||
		fail "build dependencies" "$(cd "$deb" && dpkg-checkbuilddeps 2>&1 | tail -1)"
	check "dpkg-buildpackage -us -uc (unit + functional tests at build time)" \
		sh -c "cd '$deb' && DEB_BUILD_OPTIONS=parallel=2 dpkg-buildpackage -us -uc"
	# what the build-time tests said
	for t in tests/unit-tests functional-tests/run-tests; do
		l=$deb/obj-deb/$t.log
		[ -f "$l" ] || continue
		echo "# build-time $t: $(grep -E '^\[  (PASSED|FAILED)  \]|^[0-9]+ passed, ' "$l" | tr '\n' ' ')"
		{ echo "=== $l (failures)"; grep -E '^(FAIL|ERROR):|^\[  FAILED  \]' "$l"; } >>"$work/log"
	done
	full_deb=$(ls "$work"/deb/thinp-tools_*.deb 2>/dev/null | head -1)
	plugin_deb=$(ls "$work"/deb/thinp-tools-plugin_*.deb 2>/dev/null | head -1)
	if [ -z "$full_deb" ] || [ -z "$plugin_deb" ]; then
		fail "packages" "no .deb built (see $work/log)"
		finish
	fi
	grep -q "kernel tests skipped: " "$work/log" && pass "build log says why the kernel tests are skipped" ||
		fail "kernel tests" "the build log does not say they are skipped"
	grep -q "^PASS: tests/unit-tests" "$work/log" && grep -q "^PASS: functional-tests/run-tests" "$work/log" &&
		pass "unit and functional tests ran in the package build" ||
		fail "tests at build time" "no test output in the build log"

	check "lintian: no errors, no warnings (source and both packages)" \
		sh -c "lintian --fail-on error,warning --display-level '>=warning' '$work'/deb/thinp-tools_*.changes \
			>'$work/lintian.out' 2>'$work/lintian.err'; rc=\$?; cat '$work/lintian.err'; cat '$work/lintian.out'; [ \$rc = 0 ] && [ ! -s '$work/lintian.out' ]"

	# Package metadata: shlibs Depends, and Provides/Replaces only when the
	# full suite has every command of thin-provisioning-tools.
	fields=$(dpkg-deb -f "$full_deb")
	depends=$(dpkg-deb -f "$full_deb" Depends)
	dpkg-deb -c "$full_deb" >"$work/full.list"
	lacking=$(grep -v -e '^#' -e '^version ' "$src/debian/thin-provisioning-tools.commands" |
		while read -r c; do grep -q "/usr/sbin/$c\$\|/usr/sbin/$c -> " "$work/full.list" || echo "$c"; done)
	case "$depends" in
	*libexpat1*liburing2*|*liburing2*libexpat1*) pass "Depends from dh_shlibdeps: $depends" ;;
	*) fail "Depends" "$depends" ;;
	esac
	if [ -n "$lacking" ]; then
		if echo "$fields" | grep -q '^\(Provides\|Replaces\):'; then
			fail "partial full suite" "it lacks $(echo $lacking) yet has: $(echo "$fields" | grep '^\(Provides\|Replaces\):')"
		elif ! echo "$fields" | grep -qi "partial"; then
			fail "partial full suite" "its description does not say it is partial"
		else
			pass "full suite lacks $(echo $lacking | wc -w) commands: says partial, no Provides/Replaces"
		fi
	else
		echo "$fields" | grep -q '^Provides: thin-provisioning-tools' &&
			echo "$fields" | grep -q '^Replaces: thin-provisioning-tools' &&
			pass "full suite is complete: Provides/Replaces thin-provisioning-tools" ||
			fail "complete full suite" "no Provides/Replaces"
	fi

	# The decision itself, both ways: with every command of the list the
	# full suite provides and replaces the package, with one fewer it does not.
	mkdir -p "$work/sv/debian"
	cp "$src/debian/substvars.sh" "$src/debian/thin-provisioning-tools.commands" "$work/sv/debian/"
	all=$(grep -v -e '^#' -e '^version ' "$src/debian/thin-provisioning-tools.commands" | tr '\n' ' ')
	check "substvars: complete list provides/replaces, one missing does not" \
		sh -c "cd '$work/sv' && debian/substvars.sh 'thin_merge $all' thin_merge &&
		       grep -q '^thinp:Provides=thin-provisioning-tools (= ' debian/thinp-tools.substvars &&
		       grep -q '^thinp:Replaces=thin-provisioning-tools\$' debian/thinp-tools.substvars &&
		       debian/substvars.sh '$(echo "$all" | sed 's/thin_check //')' thin_merge &&
		       grep -q '^thinp:Provides=\$' debian/thinp-tools.substvars &&
		       grep -q '^thinp:Replaces=\$' debian/thinp-tools.substvars &&
		       grep -q 'PARTIAL: this build lacks thin_check of' debian/thinp-tools.substvars"

	# The plugin ships only its commands (and their pages and completions).
	plugin_commands=$(make -s --no-print-directory -C "$deb/obj-deb" print-commands 2>/dev/null)
	listing=$(dpkg-deb -c "$plugin_deb" | awk '{ print $6 }' | sed 's|^\./|/|')
	extra=$(echo "$listing" | grep -e '^/usr/sbin/.' -e '^/usr/share/man/.*\.gz$' -e '^/usr/share/bash-completion/completions/.' |
		sed 's|.*/||; s|\.8\.gz$||' | sort -u | grep -vx -F "$(echo $plugin_commands | tr ' ' '\n')")
	[ -n "$plugin_commands" ] && [ -z "$extra" ] &&
		pass "plugin package holds only $plugin_commands (links, pages, completions)" ||
		fail "plugin contents" "commands '$plugin_commands', also: $(echo $extra)"

	# make install / uninstall of the plugin layout leaves nothing
	check "plugin install layout: make install, then make uninstall leaves no file" \
		sh -c "make -s -C '$deb/obj-deb' install DESTDIR='$work/plugin-inst' >/dev/null &&
		       test -x '$work/plugin-inst/usr/libexec/thinp-tools/pdata_tools' &&
		       test ! -e '$work/plugin-inst/usr/sbin/pdata_tools' &&
		       test -L '$work/plugin-inst/usr/sbin/thin_merge' &&
		       test -e '$work/plugin-inst/usr/share/bash-completion/completions/thin_merge' &&
		       make -s -C '$deb/obj-deb' uninstall DESTDIR='$work/plugin-inst' >/dev/null &&
		       test -z \"\$(find '$work/plugin-inst' ! -type d)\""

fi

# --- throwaway roots -------------------------------------------------------------
# The mirror and suite of this machine's apt sources (deb822 or one-line).
mirror= suite=
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
	mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
	suite=$(awk '/^Suites:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
	set -- $(awk '$1 == "deb" && $2 !~ /^\[/ { print $2, $3; exit }' /etc/apt/sources.list)
	mirror=${1:-} suite=${2:-}
fi
if [ -z "$mirror" ]; then
	skip "throwaway roots" "no Debian mirror in /etc/apt/sources.list(.d)"
	finish
fi
includes=thin-provisioning-tools,bash-completion,libexpat1,liburing2,libaio1,man-db
key=$(echo "$mirror $suite $includes" | md5sum | cut -c1-12)
base=$cache/$suite-$key.tar
if [ ! -s "$base" ]; then
	mkdir -p "$cache"
	echo "# making the base root $base"
	tmp=$cache/tmp-$$.tar
	if mmdebstrap --variant=minbase --include="$includes" "$suite" "$tmp" \
		"deb $mirror $suite main" >>"$work/log" 2>&1; then
		mv "$tmp" "$base"
	else
		rm -f "$tmp"
		fail "base root" "mmdebstrap failed (see $work/log)"
		finish
	fi
fi
newroot() {
	mkdir -p "$1" && tar -C "$1" -xf "$base" &&
		cp "$full_deb" "$plugin_deb" "$1/tmp/"
}
in_root() { ir=$1; shift; chroot "$ir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 "$@"; }
# "thin_merge --or<TAB>" in a login shell of root $1, through tmux.
tab_completes() {
	tmux -L "$tmux_socket" new-session -d -s "c$2" -x 150 -y 20 \
		"chroot '$1' /usr/bin/env -i TERM=screen HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin /bin/bash --login -i" || return 1
	sleep 2
	tmux -L "$tmux_socket" send-keys -t "c$2" "$3" Tab
	i=0
	while [ $i -lt 20 ]; do
		sleep 0.5
		tmux -L "$tmux_socket" capture-pane -p -t "c$2" | grep -q -F -- "$4" && break
		i=$((i + 1))
	done
	tmux -L "$tmux_socket" capture-pane -p -t "c$2"
	tmux -L "$tmux_socket" kill-session -t "c$2"
	[ $i -lt 20 ]
}
# completion by calling the function, as bash-completion would: $2 words
complete_words() {
	root=$1
	shift
	in_root "$root" /bin/bash -c '
		. /usr/share/bash-completion/bash_completion
		__load_completion "$1" || exit 1
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
		f=$(complete -p "$1" | sed "s/.*-F \([^ ]*\) .*/\1/")
		$f "$1" "${!#}" "${@: -2:1}"
		echo "${COMPREPLY[*]}"' sh "$@"
}

# A pool to merge: origin copy 1, external snapshot 2, unrelated 3.
cat >"$work/pool.xml" <<'EOF'
<superblock uuid="" time="2" transaction="4" flags="0" version="2" data_block_size="128" nr_data_blocks="4096">
  <device dev_id="1" mapped_blocks="4" transaction="0" creation_time="0" snap_time="0">
    <range_mapping origin_begin="0" data_begin="0" length="4" time="0"/>
  </device>
  <device dev_id="2" mapped_blocks="2" transaction="1" creation_time="1" snap_time="1">
    <single_mapping origin_block="1" data_block="4" time="1"/>
    <single_mapping origin_block="9" data_block="5" time="1"/>
  </device>
  <device dev_id="3" mapped_blocks="3" transaction="2" creation_time="2" snap_time="2">
    <range_mapping origin_begin="0" data_begin="100" length="3" time="2"/>
  </device>
</superblock>
EOF

# --- plugin beside Debian's thin-provisioning-tools --------------------------------
r=$work/root-plugin
if newroot "$r"; then
	debfiles=$(in_root "$r" dpkg-query -L thin-provisioning-tools | sort)
	check "plugin: dpkg -i beside thin-provisioning-tools, no file conflict" \
		sh -c "out=\$(chroot '$r' dpkg -i /tmp/$(basename "$plugin_deb") 2>&1); rc=\$?; echo \"\$out\";
		       [ \$rc = 0 ] && ! echo \"\$out\" | grep -qi 'overwrite\|conflict' &&
		       chroot '$r' dpkg -s thinp-tools-plugin | grep -q '^Status: install ok installed'"
	plugin_files=$(in_root "$r" dpkg-query -L thinp-tools-plugin 2>/dev/null)
	echo "$debfiles" >"$work/debfiles"
	collide=$(echo "$plugin_files" | sort | comm -12 - "$work/debfiles" |
		while read -r f; do [ -d "$r$f" ] || echo "$f"; done)
	[ -n "$plugin_files" ] && [ -n "$debfiles" ] && [ -z "$collide" ] &&
		pass "plugin: no file of thin-provisioning-tools" ||
		fail "plugin: shared files" "$(echo $collide)"
	v_ours=$(in_root "$r" thin_merge -V 2>&1)
	v_deb=$(in_root "$r" thin_check -V 2>&1)
	# ours: the link goes to our binary (which prints upstream's numbering)
	[ -n "$v_ours" ] && [ "$v_ours" = "$(in_root "$r" /usr/libexec/thinp-tools/pdata_tools -V)" ] &&
		[ "$v_ours" != 0.9.0 ] && [ "$v_deb" = 0.9.0 ] &&
		[ "$(readlink -f "$r/usr/sbin/thin_merge")" = "$r/usr/libexec/thinp-tools/pdata_tools" ] &&
		pass "plugin: thin_merge -V is ours ($v_ours), thin_check -V Debian's ($v_deb)" ||
		fail "plugin: versions" "thin_merge -V: $v_ours, thin_check -V: $v_deb"
	cp "$work/pool.xml" "$r/tmp/pool.xml"
	check "plugin: our thin_merge's output passes Debian's thin_check" \
		in_root "$r" sh -c 'set -e
			truncate -s 4M /tmp/meta /tmp/merged
			thin_restore -i /tmp/pool.xml -o /tmp/meta
			thin_merge -i /tmp/meta -o /tmp/merged --origin 1 --snapshot 2
			thin_check /tmp/merged
			thin_dump /tmp/merged | grep -c "<device " | grep -qx 2'
	check "plugin: bash completes 'thin_merge --or<TAB>' to --origin" \
		tab_completes "$r" 1 "thin_merge --or" "thin_merge --origin"
	ids=$(complete_words "$r" thin_merge -i /tmp/meta --snapshot "" 2>&1)
	[ "$ids" = "1 2 3" ] && pass "plugin: completion of --snapshot lists the device ids (1 2 3)" ||
		fail "plugin: device id completion" "got '$ids'"
	check "plugin: purge leaves thin-provisioning-tools intact" \
		sh -c "chroot '$r' dpkg --purge thinp-tools-plugin &&
		       chroot '$r' dpkg -s thin-provisioning-tools | grep -q '^Status: install ok installed' &&
		       test -z \"\$(chroot '$r' dpkg --verify thin-provisioning-tools)\" &&
		       test \"\$(chroot '$r' thin_check -V)\" = 0.9.0 &&
		       test ! -e '$r/usr/sbin/thin_merge' && test ! -e '$r/usr/libexec/thinp-tools/pdata_tools'"
	left=$(echo "$plugin_files" | while read -r f; do [ -e "$r$f" ] && [ ! -d "$r$f" ] && echo "$f"; done)
	[ -n "$plugin_files" ] && [ -z "$left" ] && pass "plugin: purge removes all its files" || fail "plugin: left after purge" "$(echo $left)"
	rm -rf --one-file-system "$r"
else
	fail "plugin root" "could not unpack $base"
fi

# --- the full suite alone ------------------------------------------------------------
r=$work/root-full
if newroot "$r"; then
	in_root "$r" dpkg --purge thin-provisioning-tools >>"$work/log" 2>&1
	check "full suite: dpkg -i" \
		in_root "$r" dpkg -i "/tmp/$(basename "$full_deb")"
	full_files=$(in_root "$r" dpkg-query -L thinp-tools 2>/dev/null)
	commands=$(echo "$full_files" | sed -n 's|^/usr/sbin/||p')
	bad=
	n=0
	version=$(in_root "$r" pdata_tools -V 2>/dev/null)
	for c in $commands; do
		n=$((n + 1))
		h=$(in_root "$r" "$c" -h 2>/dev/null) && [ -n "$h" ] || bad="$bad $c(-h)"
		v=$(in_root "$r" "$c" -V 2>/dev/null) && [ "$v" = "$version" ] || bad="$bad $c(-V:$v)"
	done
	[ -z "$bad" ] && [ -n "$version" ] && [ "$n" -ge 2 ] && pass "full suite: all $n commands answer -h and -V ($version)" ||
		fail "full suite: -h/-V" "$bad"
	missing_comp=
	for c in $commands; do
		[ -e "$r/usr/share/bash-completion/completions/$c" ] || missing_comp="$missing_comp $c"
	done
	[ -z "$missing_comp" ] && pass "full suite: a completion for every command" ||
		fail "full suite: completions" "none for$missing_comp"
	check "full suite: bash completes 'thin_check --super<TAB>'" \
		tab_completes "$r" 2 "thin_check --super" "thin_check --super-block-only"
	cp "$work/pool.xml" "$r/tmp/pool.xml"
	in_root "$r" sh -c 'truncate -s 4M /tmp/meta && thin_restore -i /tmp/pool.xml -o /tmp/meta' >>"$work/log" 2>&1
	ids=$(complete_words "$r" thin_dump /tmp/meta --dev-id "" 2>&1)
	[ "$ids" = "1 2 3" ] && pass "full suite: completion of thin_dump --dev-id lists the device ids (1 2 3)" ||
		fail "full suite: device id completion" "got '$ids'"
	check "full suite: purge removes all its files" \
		sh -c "[ -n '$commands' ] && chroot '$r' dpkg --purge thinp-tools &&
		       for f in $(echo "$full_files" | tr '\n' ' '); do
		           if [ -e '$r'\$f ] && [ ! -d '$r'\$f ] || [ -L '$r'\$f ]; then echo left: \$f; exit 1; fi
		       done"
	rm -rf --one-file-system "$r"
else
	fail "full root" "could not unpack $base"
fi

finish
