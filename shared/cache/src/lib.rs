//! The cache port on Redis (production, shared by every Lambda container) and in-process (a
//! laptop, one process).

mod file_buffer;
mod ledger;
mod memory;
mod redis;
mod stream_buffer;

pub use file_buffer::FileStreamBuffer;
pub use memory::MemoryCache;
pub use redis::{REAUTHENTICATE_EVERY, RedisCache, RedisLogin, RedisSettings};
pub use stream_buffer::{BufferSettings, RedisStreamBuffer};

/// ElastiCache Serverless (a cluster) runs a script only if all its keys hash to one slot, and
/// a script that reads the clock would replicate differently: every command of a script names
/// KEYS[1] and none is TIME.
#[cfg(test)]
fn assert_runs_on_a_cluster(script: &str) {
    let calls: Vec<&str> = script
        .split("redis.")
        .skip(1)
        .filter_map(|s| s.strip_prefix("call(").or_else(|| s.strip_prefix("pcall(")))
        .collect();
    assert!(!calls.is_empty(), "no redis.call in {script}");
    for call in calls {
        let command: String = call
            .trim_start_matches('\'')
            .chars()
            .take_while(char::is_ascii_alphabetic)
            .collect();
        assert_ne!(command.to_ascii_uppercase(), "TIME", "{script}");
        let first_key = call.split([',', ')']).nth(1).map(str::trim);
        assert_eq!(
            first_key,
            Some("KEYS[1]"),
            "{command} must name KEYS[1]: {script}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::{assert_runs_on_a_cluster, ledger, redis, stream_buffer};

    #[test]
    fn every_script_runs_on_elasticache_serverless() {
        assert_runs_on_a_cluster(redis::ADD);
        assert_runs_on_a_cluster(redis::TAKE);
        for script in [ledger::RESERVE, ledger::SEED, ledger::SETTLE, ledger::READ] {
            assert_runs_on_a_cluster(script);
        }
        assert_runs_on_a_cluster(stream_buffer::APPEND);
    }

    #[test]
    #[should_panic(expected = "must name KEYS[1]")]
    fn a_second_key_is_refused() {
        assert_runs_on_a_cluster("redis.call('SET', KEYS[1], 1) redis.call('DEL', KEYS[2])");
    }

    #[test]
    #[should_panic(expected = "TIME")]
    fn reading_the_clock_is_refused() {
        assert_runs_on_a_cluster("local t = redis.call('TIME') redis.call('SET', KEYS[1], t[1])");
    }
}
