# SPDX-License-Identifier: GPL-3.0-or-later
#
# Scenario "probe" (run by the harness before the others, not listed): the
# kernel boots, the dm-thin modules load, the disks are found and
# device-mapper answers (all done by guest_setup before this runs).

scenario_main() {
	info "disks=$(cat /tmp/disks | tr '\n' ' ')"
}
