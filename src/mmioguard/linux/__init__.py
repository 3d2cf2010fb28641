"""The Linux guest: a small upstream arm64 kernel with the pKVM MMIO guard client
(``CONFIG_ARM_PKVM_GUEST``) and an initramfs whose ``/init`` probes the guard.

:mod:`mmioguard.linux.build` builds and caches both (``build_kernel``,
``build_initramfs``, and ``main`` for the command line); :mod:`mmioguard.linux.cpio`
writes the initramfs archive.  Nothing is imported here, so that
``python -m mmioguard.linux.build`` runs the module once.
"""
