//! DNS providers.
