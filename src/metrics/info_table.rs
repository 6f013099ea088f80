//! Which `INFO` fields become which series. Names follow oliver006/redis_exporter so
//! existing queries and dashboards keep working, except where its names break the
//! Prometheus conventions: a counter always ends in `_total` here, and a value that
//! only grows is a counter, not a gauge.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

/// How the text of a field becomes a number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Read {
    /// The field is a number.
    Number,
    /// The field is a number scaled by this factor (ms -> s: 0.001).
    Scaled(f64),
    /// 1 when the field equals the text, else 0 (`rdb_last_bgsave_status:ok`).
    Equals(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub struct InfoMetric {
    pub field: &'static str,
    /// The exposed name, `_total` included for counters.
    pub name: &'static str,
    pub kind: Kind,
    pub read: Read,
    pub help: &'static str,
}

const fn gauge(field: &'static str, name: &'static str, help: &'static str) -> InfoMetric {
    InfoMetric {
        field,
        name,
        kind: Kind::Gauge,
        read: Read::Number,
        help,
    }
}

const fn counter(field: &'static str, name: &'static str, help: &'static str) -> InfoMetric {
    InfoMetric {
        field,
        name,
        kind: Kind::Counter,
        read: Read::Number,
        help,
    }
}

const fn status(
    field: &'static str,
    ok: &'static str,
    name: &'static str,
    help: &'static str,
) -> InfoMetric {
    InfoMetric {
        field,
        name,
        kind: Kind::Gauge,
        read: Read::Equals(ok),
        help,
    }
}

/// Plain `INFO` fields, in exposition order.
#[rustfmt::skip]
pub const INFO_METRICS: &[InfoMetric] = &[
    // Server
    gauge("uptime_in_seconds", "redis_uptime_in_seconds", "Seconds since the server started."),
    gauge("process_id", "redis_process_id", "Process id of the server."),
    gauge("io_threads_active", "redis_io_threads_active", "1 when I/O threads are active."),
    // Clients
    gauge("connected_clients", "redis_connected_clients", "Client connections, replicas excluded."),
    gauge("blocked_clients", "redis_blocked_clients", "Clients blocked on BLPOP, XREAD, WAIT and the like."),
    gauge("tracking_clients", "redis_tracking_clients", "Clients with client-side caching tracking on."),
    gauge("clients_in_timeout_table", "redis_clients_in_timeout_table", "Blocked clients with a timeout."),
    gauge("maxclients", "redis_config_maxclients", "The maxclients setting."),
    gauge("client_recent_max_input_buffer", "redis_client_recent_max_input_buffer_bytes", "Largest client input buffer recently, in bytes."),
    gauge("client_recent_max_output_buffer", "redis_client_recent_max_output_buffer_bytes", "Largest client output buffer recently, in bytes."),
    gauge("cluster_connections", "redis_cluster_connections", "Connections of the cluster bus."),
    // Memory
    gauge("used_memory", "redis_memory_used_bytes", "Bytes allocated by Redis."),
    gauge("used_memory_rss", "redis_memory_used_rss_bytes", "Resident set size of the server, in bytes."),
    gauge("used_memory_peak", "redis_memory_used_peak_bytes", "Peak of used_memory, in bytes."),
    gauge("used_memory_overhead", "redis_memory_used_overhead_bytes", "Bytes used for internal structures."),
    gauge("used_memory_startup", "redis_memory_used_startup_bytes", "Bytes used at start-up."),
    gauge("used_memory_dataset", "redis_memory_used_dataset_bytes", "Bytes used by the data set."),
    gauge("used_memory_lua", "redis_memory_used_lua_bytes", "Bytes used by the Lua engine."),
    gauge("used_memory_scripts", "redis_memory_used_scripts_bytes", "Bytes used by cached scripts."),
    gauge("maxmemory", "redis_memory_max_bytes", "The maxmemory setting in bytes; 0 means no limit."),
    gauge("total_system_memory", "redis_total_system_memory_bytes", "Memory of the host, in bytes."),
    gauge("mem_fragmentation_ratio", "redis_mem_fragmentation_ratio", "used_memory_rss divided by used_memory."),
    gauge("mem_fragmentation_bytes", "redis_mem_fragmentation_bytes", "used_memory_rss minus used_memory, in bytes."),
    gauge("allocator_frag_ratio", "redis_allocator_frag_ratio", "Allocator fragmentation ratio."),
    gauge("allocator_rss_ratio", "redis_allocator_rss_ratio", "Allocator resident ratio."),
    gauge("mem_clients_normal", "redis_mem_clients_normal", "Bytes used by normal clients."),
    gauge("mem_clients_slaves", "redis_mem_clients_slaves", "Bytes used by replica clients."),
    gauge("mem_not_counted_for_evict", "redis_mem_not_counted_for_eviction_bytes", "Bytes not counted for eviction."),
    gauge("lazyfree_pending_objects", "redis_lazyfree_pending_objects", "Objects waiting to be freed."),
    gauge("active_defrag_running", "redis_active_defrag_running", "1 while active defragmentation runs."),
    gauge("number_of_cached_scripts", "redis_number_of_cached_scripts", "Cached Lua scripts."),
    // Persistence
    gauge("loading", "redis_loading_dump_file", "1 while a dump file is being loaded."),
    gauge("rdb_changes_since_last_save", "redis_rdb_changes_since_last_save", "Changes since the last RDB save."),
    gauge("rdb_bgsave_in_progress", "redis_rdb_bgsave_in_progress", "1 while an RDB save runs."),
    gauge("rdb_last_save_time", "redis_rdb_last_save_timestamp_seconds", "Unix time of the last successful RDB save."),
    status("rdb_last_bgsave_status", "ok", "redis_rdb_last_bgsave_status", "1 when the last RDB save succeeded."),
    gauge("rdb_last_bgsave_time_sec", "redis_rdb_last_bgsave_duration_seconds", "Duration of the last RDB save in seconds; -1 before any."),
    gauge("rdb_current_bgsave_time_sec", "redis_rdb_current_bgsave_duration_seconds", "Duration of the running RDB save in seconds; -1 when none runs."),
    gauge("rdb_last_cow_size", "redis_rdb_last_cow_size_bytes", "Copy-on-write bytes of the last RDB save."),
    gauge("aof_enabled", "redis_aof_enabled", "1 when the append-only file is on."),
    gauge("aof_rewrite_in_progress", "redis_aof_rewrite_in_progress", "1 while an AOF rewrite runs."),
    gauge("aof_rewrite_scheduled", "redis_aof_rewrite_scheduled", "1 when an AOF rewrite waits for an RDB save."),
    gauge("aof_last_rewrite_time_sec", "redis_aof_last_rewrite_duration_seconds", "Duration of the last AOF rewrite in seconds; -1 before any."),
    gauge("aof_current_rewrite_time_sec", "redis_aof_current_rewrite_duration_seconds", "Duration of the running AOF rewrite in seconds; -1 when none runs."),
    status("aof_last_bgrewrite_status", "ok", "redis_aof_last_bgrewrite_status", "1 when the last AOF rewrite succeeded."),
    status("aof_last_write_status", "ok", "redis_aof_last_write_status", "1 when the last write to the AOF succeeded."),
    gauge("aof_last_cow_size", "redis_aof_last_cow_size_bytes", "Copy-on-write bytes of the last AOF rewrite."),
    // Stats
    counter("total_connections_received", "redis_connections_received_total", "Connections accepted."),
    counter("total_commands_processed", "redis_commands_processed_total", "Commands processed."),
    counter("total_net_input_bytes", "redis_net_input_bytes_total", "Bytes read from the network."),
    counter("total_net_output_bytes", "redis_net_output_bytes_total", "Bytes written to the network."),
    counter("rejected_connections", "redis_rejected_connections_total", "Connections refused because of maxclients."),
    counter("expired_keys", "redis_expired_keys_total", "Keys removed because they expired."),
    gauge("expired_stale_perc", "redis_expired_stale_percentage", "Estimated percentage of expired keys still in memory."),
    counter("expired_time_cap_reached_count", "redis_expired_time_cap_reached_total", "Active expiry cycles stopped early by their time cap."),
    counter("evicted_keys", "redis_evicted_keys_total", "Keys evicted because of maxmemory."),
    counter("keyspace_hits", "redis_keyspace_hits_total", "Successful key lookups."),
    counter("keyspace_misses", "redis_keyspace_misses_total", "Failed key lookups."),
    gauge("pubsub_channels", "redis_pubsub_channels", "Pub/sub channels with subscribers."),
    gauge("pubsub_patterns", "redis_pubsub_patterns", "Pub/sub patterns with subscribers."),
    InfoMetric {
        field: "latest_fork_usec",
        name: "redis_latest_fork_seconds",
        kind: Kind::Gauge,
        read: Read::Scaled(1e-6),
        help: "Duration of the latest fork in seconds.",
    },
    counter("sync_full", "redis_replica_resyncs_full_total", "Full resynchronisations with replicas."),
    counter("sync_partial_ok", "redis_replica_partial_resync_accepted_total", "Partial resynchronisations accepted."),
    counter("sync_partial_err", "redis_replica_partial_resync_denied_total", "Partial resynchronisations denied."),
    gauge("migrate_cached_sockets", "redis_migrate_cached_sockets", "Sockets open for MIGRATE."),
    gauge("tracking_total_keys", "redis_tracking_total_keys", "Keys tracked for client-side caching."),
    gauge("tracking_total_items", "redis_tracking_total_items", "Items tracked for client-side caching."),
    counter("total_error_replies", "redis_error_replies_total", "Error replies sent to clients."),
    counter("unexpected_error_replies", "redis_unexpected_error_replies_total", "Error replies of unexpected kinds (AOF load, replication)."),
    counter("total_reads_processed", "redis_reads_processed_total", "Read events processed."),
    counter("total_writes_processed", "redis_writes_processed_total", "Write events processed."),
    // Replication
    gauge("connected_slaves", "redis_connected_slaves", "Replicas connected to this primary."),
    gauge("master_repl_offset", "redis_master_repl_offset", "Replication offset of this server, in bytes."),
    gauge("repl_backlog_active", "redis_repl_backlog_is_active", "1 when the replication backlog is active."),
    gauge("repl_backlog_size", "redis_replication_backlog_bytes", "Size of the replication backlog, in bytes."),
    gauge("repl_backlog_histlen", "redis_repl_backlog_history_bytes", "Bytes of data in the replication backlog."),
    gauge("slave_priority", "redis_slave_priority", "Replica priority for promotion."),
    gauge("slave_expires_tracked_keys", "redis_slave_expires_tracked_keys", "Keys a writable replica tracks for expiry."),
    // CPU
    counter("used_cpu_sys", "redis_cpu_sys_seconds_total", "System CPU used by the server, in seconds."),
    counter("used_cpu_user", "redis_cpu_user_seconds_total", "User CPU used by the server, in seconds."),
    counter("used_cpu_sys_children", "redis_cpu_sys_children_seconds_total", "System CPU used by child processes, in seconds."),
    counter("used_cpu_user_children", "redis_cpu_user_children_seconds_total", "User CPU used by child processes, in seconds."),
    counter("used_cpu_sys_main_thread", "redis_cpu_sys_main_thread_seconds_total", "System CPU used by the main thread, in seconds."),
    counter("used_cpu_user_main_thread", "redis_cpu_user_main_thread_seconds_total", "User CPU used by the main thread, in seconds."),
    // Cluster
    gauge("cluster_enabled", "redis_cluster_enabled", "1 when cluster mode is on."),
    // Sentinel
    gauge("sentinel_masters", "redis_sentinel_masters", "Primaries this Sentinel watches."),
    gauge("sentinel_tilt", "redis_sentinel_tilt", "1 while this Sentinel is in TILT mode."),
    gauge("sentinel_running_scripts", "redis_sentinel_running_scripts", "Sentinel scripts running."),
    gauge("sentinel_scripts_queue_length", "redis_sentinel_scripts_queue_length", "Sentinel scripts waiting to run."),
    gauge("sentinel_simulate_failure_flags", "redis_sentinel_simulate_failure_flags", "Sentinel failure simulation flags."),
];

/// `CLUSTER INFO` fields.
#[rustfmt::skip]
pub const CLUSTER_METRICS: &[InfoMetric] = &[
    status("cluster_state", "ok", "redis_cluster_state", "1 when the cluster state is ok."),
    gauge("cluster_slots_assigned", "redis_cluster_slots_assigned", "Hash slots assigned to a node."),
    gauge("cluster_slots_ok", "redis_cluster_slots_ok", "Hash slots on nodes that are reachable."),
    gauge("cluster_slots_pfail", "redis_cluster_slots_pfail", "Hash slots on nodes suspected to be failing."),
    gauge("cluster_slots_fail", "redis_cluster_slots_fail", "Hash slots on nodes that failed."),
    gauge("cluster_known_nodes", "redis_cluster_known_nodes", "Nodes known to this node."),
    gauge("cluster_size", "redis_cluster_size", "Primaries serving at least one slot."),
    gauge("cluster_current_epoch", "redis_cluster_current_epoch", "Current epoch of the cluster."),
    gauge("cluster_my_epoch", "redis_cluster_my_epoch", "Epoch of this node."),
    counter("cluster_stats_messages_sent", "redis_cluster_messages_sent_total", "Cluster bus messages sent."),
    counter("cluster_stats_messages_received", "redis_cluster_messages_received_total", "Cluster bus messages received."),
];

impl InfoMetric {
    /// Reads this metric's value from a field's text.
    pub fn value(&self, text: &str) -> Option<f64> {
        let scale = match self.read {
            Read::Equals(ok) => return Some(if text == ok { 1.0 } else { 0.0 }),
            Read::Number => 1.0,
            Read::Scaled(s) => s,
        };
        text.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(|v| v * scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_follow_the_conventions() {
        let mut seen = HashSet::new();
        for m in INFO_METRICS.iter().chain(CLUSTER_METRICS) {
            assert!(seen.insert(m.name), "{} listed twice", m.name);
            assert!(m.name.starts_with("redis_"), "{}", m.name);
            assert_eq!(
                m.kind == Kind::Counter,
                m.name.ends_with("_total"),
                "{}",
                m.name
            );
            assert!(m.help.ends_with('.'), "{}", m.name);
        }
    }

    #[test]
    fn values_are_read_by_their_rule() {
        let ok = status("x", "ok", "redis_x", "x.");
        assert_eq!(ok.value("ok"), Some(1.0));
        assert_eq!(ok.value("err"), Some(0.0));
        assert_eq!(gauge("x", "redis_x", "x.").value("1.5"), Some(1.5));
        assert_eq!(gauge("x", "redis_x", "x.").value("nan"), None);
        assert_eq!(gauge("x", "redis_x", "x.").value("-"), None);
    }
}
