"""nftables policy backend: the eBPF datapath's semantics with sets and verdict maps."""

from .datapath import NftDatapath, NftError

__all__ = ["NftDatapath", "NftError"]
