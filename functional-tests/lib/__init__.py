# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers shared by the functional tests (see functional-tests/README.md)."""
