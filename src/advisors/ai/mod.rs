//! Failover advice from Azure OpenAI or any OpenAI-compatible endpoint.
