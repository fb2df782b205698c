"""IP address management: a pure allocator, a store protocol with memory and disk stores, and the service."""
