"""Pure-PyTorch operators used by hf_mimetic (currently: the fast Mamba 1 selective scan)."""

from .selective_scan import (
    ENV_VAR,
    default_block_size,
    disable_fast_mamba_scan,
    enable_fast_mamba_scan,
    fast_mamba_scan,
    is_fast_mamba_scan_enabled,
    mamba_kernels_available,
    mamba_selective_scan_fast,
    selective_scan_core,
)

__all__ = [
    "ENV_VAR",
    "default_block_size",
    "disable_fast_mamba_scan",
    "enable_fast_mamba_scan",
    "fast_mamba_scan",
    "is_fast_mamba_scan_enabled",
    "mamba_kernels_available",
    "mamba_selective_scan_fast",
    "selective_scan_core",
]
