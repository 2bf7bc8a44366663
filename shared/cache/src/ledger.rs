//! Budgets' ledgers on Redis: one hash per user (`s:<scope>` = micro-dollars spent there,
//! `r:<id>` = `<micro-dollars>:<expiry ms>` per live hold), changed only by these scripts, each
//! on its one key, with `now` passed in. They are [`Ledger`]'s methods, step for step.

use std::time::Duration;

use bestchat_domain::budget::{Ledger, Limit, Reservation, ReserveOutcome};
use bestchat_domain::ports::cache::CacheError;
use fred::prelude::LuaInterface;

use crate::redis::{RedisCache, millis};

/// [`Ledger::reserve`]. ARGV: now, id, amount, expiry, ttl, then (scope, limit) pairs.
/// Answers `{0}` reserved, `{1, "scope scope…"}` unseeded, `{2, scope, available}` refused.
pub(crate) const RESERVE: &str = "local now = tonumber(ARGV[1]) \
    local id = 'r:' .. ARGV[2] local amount = tonumber(ARGV[3]) \
    local wanted = {} \
    for i = 6, #ARGV, 2 do wanted['s:' .. ARGV[i]] = true end \
    local fields = redis.call('HGETALL', KEYS[1]) \
    local others = 0 \
    for i = 1, #fields, 2 do \
      local f = fields[i] local kind = string.sub(f, 1, 2) \
      if kind == 'r:' then \
        local v = fields[i + 1] local sep = string.find(v, ':', 1, true) \
        if tonumber(string.sub(v, sep + 1)) <= now then redis.call('HDEL', KEYS[1], f) \
        elseif f ~= id then others = others + tonumber(string.sub(v, 1, sep - 1)) end \
      elseif kind == 's:' and not wanted[f] then redis.call('HDEL', KEYS[1], f) end \
    end \
    local missing = {} \
    for i = 6, #ARGV, 2 do \
      if redis.call('HEXISTS', KEYS[1], 's:' .. ARGV[i]) == 0 then table.insert(missing, ARGV[i]) end \
    end \
    if #missing > 0 then return {1, table.concat(missing, ' '), 0} end \
    for i = 6, #ARGV, 2 do \
      local spent = tonumber(redis.call('HGET', KEYS[1], 's:' .. ARGV[i])) \
      local available = tonumber(ARGV[i + 1]) - spent - others \
      if amount > available then return {2, ARGV[i], available} end \
    end \
    redis.call('HSET', KEYS[1], id, ARGV[3] .. ':' .. ARGV[4]) \
    redis.call('PEXPIRE', KEYS[1], ARGV[5]) \
    return {0, '', 0}";

/// [`Ledger::seed`]. ARGV: scope, spent, ttl.
pub(crate) const SEED: &str = "redis.call('HSETNX', KEYS[1], 's:' .. ARGV[1], ARGV[2]) \
    redis.call('PEXPIRE', KEYS[1], ARGV[3]) return 1";

/// [`Ledger::settle`]. ARGV: id, cost, ttl. Answers 1 when the hold was there.
pub(crate) const SETTLE: &str = "if redis.call('HDEL', KEYS[1], 'r:' .. ARGV[1]) == 0 then return 0 end \
    local fields = redis.call('HKEYS', KEYS[1]) \
    for _, f in ipairs(fields) do \
      if string.sub(f, 1, 2) == 's:' then redis.call('HINCRBY', KEYS[1], f, ARGV[2]) end \
    end \
    redis.call('PEXPIRE', KEYS[1], ARGV[3]) return 1";

pub(crate) const READ: &str = "return redis.call('HGETALL', KEYS[1])";

pub(crate) async fn reserve(
    cache: &RedisCache,
    key: &str,
    limits: &[Limit],
    hold: &Reservation,
    now_ms: i64,
    ttl: Duration,
) -> Result<ReserveOutcome, CacheError> {
    let mut args = vec![
        now_ms.to_string(),
        hold.id.clone(),
        hold.amount_micros.to_string(),
        hold.expires_at_ms.to_string(),
        millis(ttl).to_string(),
    ];
    for limit in limits {
        args.push(limit.scope.clone());
        args.push(limit.limit_micros.to_string());
    }
    let (status, scope, available): (i64, String, i64) = cache
        .run(cache.client().eval(RESERVE, vec![cache.key(key)], args))
        .await?;
    Ok(match status {
        0 => ReserveOutcome::Reserved,
        1 => ReserveOutcome::Unseeded(scope.split(' ').map(str::to_owned).collect()),
        _ => ReserveOutcome::Refused {
            scope,
            available_micros: available,
        },
    })
}

pub(crate) async fn seed(
    cache: &RedisCache,
    key: &str,
    scope: &str,
    spent_micros: i64,
    ttl: Duration,
) -> Result<(), CacheError> {
    let _: i64 = cache
        .run(cache.client().eval(
            SEED,
            vec![cache.key(key)],
            vec![
                scope.to_owned(),
                spent_micros.to_string(),
                millis(ttl).to_string(),
            ],
        ))
        .await?;
    Ok(())
}

pub(crate) async fn settle(
    cache: &RedisCache,
    key: &str,
    id: &str,
    cost_micros: i64,
    ttl: Duration,
) -> Result<bool, CacheError> {
    let settled: i64 = cache
        .run(cache.client().eval(
            SETTLE,
            vec![cache.key(key)],
            vec![
                id.to_owned(),
                cost_micros.to_string(),
                millis(ttl).to_string(),
            ],
        ))
        .await?;
    Ok(settled == 1)
}

pub(crate) async fn read(cache: &RedisCache, key: &str) -> Result<Ledger, CacheError> {
    let flat: Vec<String> = cache
        .run(
            cache
                .client()
                .eval(READ, vec![cache.key(key)], Vec::<String>::new()),
        )
        .await?;
    let mut ledger = Ledger::default();
    for pair in flat.chunks_exact(2) {
        let (field, value) = (&pair[0], &pair[1]);
        if let Some(scope) = field.strip_prefix("s:") {
            ledger
                .spent
                .insert(scope.to_owned(), value.parse().unwrap_or_default());
        } else if let Some(id) = field.strip_prefix("r:")
            && let Some((amount, expiry)) = value.split_once(':')
        {
            ledger.holds.insert(
                id.to_owned(),
                (
                    amount.parse().unwrap_or_default(),
                    expiry.parse().unwrap_or_default(),
                ),
            );
        }
    }
    Ok(ledger)
}
