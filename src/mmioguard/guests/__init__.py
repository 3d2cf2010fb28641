"""Bundled AArch64 guest programs and the guest SDK they are built with.

Build them with :func:`mmioguard.guests.build.build_guest`; see ``README.md``
next to this file.
"""
