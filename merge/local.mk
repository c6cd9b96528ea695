# SPDX-License-Identifier: GPL-3.0-or-later
# The in-place merge's check of what it reads and changes (issue 10).
libpdata_a_SOURCES += merge/merge-check.c
