# SPDX-License-Identifier: GPL-3.0-or-later
#
# Install layout, bash completion and release tarball (included by
# Makefile.am).
#
# Full suite (default): sbindir/pdata_tools and a symlink per command of
# COMMANDS, every man page, a completion per command.
# Plugin (configure --enable-plugin), beside a distribution's
# thin-provisioning-tools: pkglibexecdir/pdata_tools, symlinks in sbindir
# for the commands of PLUGIN_COMMANDS that are built, and only their man
# pages and completions; no file name of that package is used.

# Shell commands printing the commands of the multi-call binary this
# install links in sbindir; those and the scripts installed in sbindir
# (such as thin_merge_lvm, over thin_merge), which have their man pages
# and completions installed; the names the completion script is installed
# (and registered) under.
sbin_script_names = for s in $(sbin_SCRIPTS) $(dist_sbin_SCRIPTS); do basename $$s; done
if PLUGIN
installed_commands = for c in $(PLUGIN_COMMANDS); do \
	case " $(COMMANDS) " in *" $$c "*) echo $$c;; esac; done
pdata_tools_path = $(pkglibexecdir)/pdata_tools
else
installed_commands = echo $(COMMANDS)
pdata_tools_path = $(sbindir)/pdata_tools
endif
installed_names = $(installed_commands); $(sbin_script_names)
if PLUGIN
completion_names = $(installed_names)
else
completion_names = echo pdata_tools; $(installed_names)
endif

# `make -s print-commands`: the commands this install puts in sbindir,
# scripts included (used by debian/rules and scripts/test-packaging.sh).
print-commands:
	@echo `$(installed_names)`

# `make -s print-all-commands`: every command of the multi-call binary.
print-all-commands:
	@echo $(COMMANDS)

install-exec-hook:
	@$(MKDIR_P) '$(DESTDIR)$(sbindir)'
	@target=pdata_tools; \
	if test '$(pdata_tools_path)' != '$(sbindir)/pdata_tools'; then \
		target='$(pdata_tools_path)'; \
		if test '$(sbindir)' = '$(exec_prefix)/sbin'; then \
			case $$target in '$(exec_prefix)'/*) \
				target=../$${target#'$(exec_prefix)'/};; \
			esac; \
		fi; \
	fi; \
	for c in `$(installed_commands)`; do \
		echo " LN_S $$target $(DESTDIR)$(sbindir)/$$c"; \
		rm -f '$(DESTDIR)$(sbindir)/'$$c; \
		$(LN_S) $$target '$(DESTDIR)$(sbindir)/'$$c || exit 1; \
	done

# The plugin ships only the man pages of its commands and scripts.
install-data-hook:
if PLUGIN
	@keep=`$(installed_names)`; keep=" `echo $$keep` "; \
	for m in $(dist_man8_MANS); do \
		c=`basename $$m .8`; \
		case "$$keep" in *" $$c "*) ;; \
		*) rm -f '$(DESTDIR)$(man8dir)/'$$c.8;; esac; \
	done
endif

#----------------------------------------------------------------
# Bash completion: one script, installed under the name of each command
# (where bash-completion looks a command's completion up), the other
# names being symlinks to the first.
noinst_DATA = packaging/thinp-tools.bash
CLEANFILES = packaging/thinp-tools.bash
EXTRA_DIST += packaging/bash-completion.in

packaging/thinp-tools.bash: $(srcdir)/packaging/bash-completion.in Makefile
	$(AM_V_GEN)$(MKDIR_P) packaging && \
	names=`$(completion_names)` && names=`echo $$names` && \
	sed -e 's|@PDATA_TOOLS[@]|$(pdata_tools_path)|g' \
	    -e "s|@COMPLETE_COMMANDS[@]|$$names|g" \
	    $(srcdir)/packaging/bash-completion.in >$@.tmp && mv $@.tmp $@

install-data-local: packaging/thinp-tools.bash
	@if test -n '$(bashcompletiondir)'; then \
		set -- `$(completion_names)`; first=$$1; shift; \
		$(MKDIR_P) '$(DESTDIR)$(bashcompletiondir)' || exit 1; \
		echo " INSTALL $(DESTDIR)$(bashcompletiondir)/$$first"; \
		$(INSTALL_DATA) packaging/thinp-tools.bash \
			'$(DESTDIR)$(bashcompletiondir)/'$$first || exit 1; \
		for n; do \
			rm -f '$(DESTDIR)$(bashcompletiondir)/'$$n; \
			$(LN_S) $$first '$(DESTDIR)$(bashcompletiondir)/'$$n || exit 1; \
		done; \
	fi

uninstall-local:
	@for c in `$(installed_commands)`; do \
		rm -f '$(DESTDIR)$(sbindir)/'$$c; \
	done
	@if test -n '$(bashcompletiondir)'; then \
		for n in `$(completion_names)`; do \
			rm -f '$(DESTDIR)$(bashcompletiondir)/'$$n; \
		done; \
	fi

#----------------------------------------------------------------
# Release tarball: the folders that are not sources of a program go in
# whole, without Python caches or debhelper's build products.
dist-hook:
	@for d in bench doc scripts debian packaging; do \
		if test -d '$(srcdir)/'$$d; then \
			cp -pR '$(srcdir)/'$$d '$(distdir)/' || exit 1; \
		fi; \
	done
	chmod -R u+w '$(distdir)'
	find '$(distdir)' -name __pycache__ -prune -exec rm -rf {} +
	find '$(distdir)' -name '*.pyc' -exec rm -f {} +
	if test -d '$(distdir)/debian'; then \
		cd '$(distdir)/debian' && rm -rf .debhelper tmp files \
			debhelper-build-stamp *.substvars *.debhelper.log \
			thinp-tools thinp-tools-plugin; \
	fi

.PHONY: print-commands print-all-commands
