//! How poller tokens name what is ready.
