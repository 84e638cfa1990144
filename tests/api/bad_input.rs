//! Connections: see the next commit.
