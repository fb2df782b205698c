"""The policy compiler: identities, selector cache, per-identity resolved policy and map images.

Pure logic: nothing here touches the kernel or the network.
"""
