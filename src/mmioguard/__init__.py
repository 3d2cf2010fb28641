"""mmioguard: a hypervisor and VMM for AArch64 guests enforcing KVM/arm64's MMIO guard."""

__version__ = "0.1.0"
