//! Client impact: error rates from client logs in Elasticsearch.
