import HubRedis

/// The Lua scripts behind `RedisLeaseQueue`: one script per operation, so every operation is
/// atomic. Scripts never read the clock or make random numbers: `now` and fresh lease tokens
/// come in ARGV, so they are deterministic and replicate as effects.
///
/// Per queue (base `<ns>queue:{qb<k>}:<byte length of name>:<name>:`, `k` the queue's bucket,
/// see `RedisLeaseQueue`): `ready` ZSET (claimable queued ids by rank * 2^50 + enqueue
/// sequence), `leased` ZSET (claimed ids by lease deadline), `due` ZSET (live ids by next due
/// time: TTL, or the earlier of TTL and lease deadline or release delay) and one HASH per
/// message, `m:<ID>`. Per bucket: `<ns>queue:{qb<k>}:due` ZSET (member `<ID><queue name>`, the
/// id being 36 bytes; score: next due time of a live message, or when a terminal one is
/// forgotten) and `<ns>queue:{qb<k>}:seq`, the enqueue sequence (only its order within a queue
/// matters, so one per bucket serves every queue in it).
///
/// Message hash fields: `st` state, `att` attempts, `max` max attempts, `pri` priority rank,
/// `seq`, `vt` visibility timeout (ms), `exp` expiresAt, `pl` payload; once claimed `tok`,
/// `dl` deadline, `la` leased at; while a released message waits out its delay `av` (when it
/// is claimable again: until then it is in `due` at that time but not in `ready`); once completed `ok` ("1"/"0") and `res`; once terminal `fa`
/// (forget at, by the callers' clock) and a PEXPIRE of the retention (real time, a backstop
/// that bounds memory even with no sweeper). A live message's hash never has a TTL: it is
/// created after a DEL and only `finish` sets one.
///
/// Scripts name the per-queue keys they are called for in KEYS; message hashes (and, in
/// `sweep`, other queues' keys of the same bucket) are derived inside the script. Every key a
/// script touches carries its bucket's hash tag `{qb<k>}`, so on Redis Cluster each script
/// runs on the one shard owning that slot, and on a single Redis nothing changes.
enum RedisLeaseQueueScripts {
    /// Helpers shared by the scripts. `K` holds a queue's key names: ready, leased, due, gdue
    /// (its bucket's due set) and m (the message hash prefix).
    private static let prelude = """
    local RANK_SPAN = 1125899906842624
    local STATUS_FIELDS = {'st', 'att', 'max', 'pri', 'tok', 'dl', 'ok', 'res'}

    local function status_of(mk)
      return redis.call('HMGET', mk, unpack(STATUS_FIELDS))
    end

    local function is_live(st)
      return st == 'queued' or st == 'claimed'
    end

    -- Ends a live message as `state`: out of the queue's sets, filed in the cross-queue set
    -- at its forget time, and its hash kept for `ret` ms of real time.
    local function finish(K, id, member, state, now, ret)
      local mk = K.m .. id
      redis.call('ZREM', K.ready, id)
      redis.call('ZREM', K.leased, id)
      redis.call('ZREM', K.due, id)
      redis.call('HSET', mk, 'st', state, 'fa', now + ret)
      redis.call('ZADD', K.gdue, now + ret, member)
      redis.call('PEXPIRE', mk, ret)
    end

    -- Forgets a terminal message.
    local function forget(K, id, member)
      redis.call('DEL', K.m .. id)
      redis.call('ZREM', K.gdue, member)
    end

    -- Looks a message up for extend/complete/cancel/enqueue: nil when unknown, or terminal
    -- past its retention at `now` (then forgotten here, as a sweep would have).
    local function known(K, id, member, now)
      local f = redis.call('HMGET', K.m .. id, 'st', 'fa')
      if not f[1] then return nil end
      if not is_live(f[1]) and tonumber(f[2]) <= now then
        forget(K, id, member)
        return nil
      end
      return f[1]
    end

    -- Puts a queued message in line at its original place; its next due time is its TTL.
    local function requeue(K, id, member, rank, seq, exp)
      redis.call('ZADD', K.ready, tonumber(rank) * RANK_SPAN + tonumber(seq), id)
      redis.call('ZADD', K.due, exp, id)
      redis.call('ZADD', K.gdue, exp, member)
    end

    -- The due transition of live message `id`: expired when its TTL lapsed, else a lapsed
    -- lease goes back in line at its original place, or is dead-lettered out of attempts.
    -- A released message whose delay is over goes back in line without a transition.
    -- Returns the new state and the attempts, or nil when nothing was due.
    local function apply_due(K, queue, id, now, ret)
      local mk = K.m .. id
      local member = id .. queue
      local f = redis.call('HMGET', mk, 'st', 'att', 'max', 'exp', 'dl', 'seq', 'pri', 'av')
      local st = f[1]
      if not st then
        redis.call('ZREM', K.ready, id)
        redis.call('ZREM', K.leased, id)
        redis.call('ZREM', K.due, id)
        redis.call('ZREM', K.gdue, member)
        return nil
      end
      if not is_live(st) then return nil end
      local att, exp = tonumber(f[2]), tonumber(f[4])
      if exp <= now then
        finish(K, id, member, 'expired', now, ret)
        return 'expired', att
      end
      if st == 'claimed' and tonumber(f[5]) <= now then
        if att >= tonumber(f[3]) then
          finish(K, id, member, 'dead_lettered', now, ret)
          return 'dead_lettered', att
        end
        redis.call('HSET', mk, 'st', 'queued')
        redis.call('ZREM', K.leased, id)
        requeue(K, id, member, f[7], f[6], exp)
        return 'queued', att
      end
      if st == 'queued' and f[8] and tonumber(f[8]) <= now then
        redis.call('HDEL', mk, 'av')
        requeue(K, id, member, f[7], f[6], exp)
        return nil
      end
      -- Not due after all (an index out of step): file it again at its true due time.
      local due = exp
      if st == 'claimed' then due = math.min(exp, tonumber(f[5])) end
      if st == 'queued' and f[8] then due = math.min(exp, tonumber(f[8])) end
      redis.call('ZADD', K.due, due, id)
      redis.call('ZADD', K.gdue, due, member)
      return nil
    end

    """

    /// KEYS ready, leased, due, gdue, seq. ARGV message-hash prefix, queue, id, now, rank,
    /// payload, vt, max, exp, attempts. Returns 1 when added, 0 when the id is known.
    static let enqueue = RedisScript(prelude + """
    local K = {ready = KEYS[1], leased = KEYS[2], due = KEYS[3], gdue = KEYS[4], m = ARGV[1]}
    local queue, id, now = ARGV[2], ARGV[3], tonumber(ARGV[4])
    local member = id .. queue
    if known(K, id, member, now) then return 0 end
    local rank, exp = tonumber(ARGV[5]), tonumber(ARGV[9])
    local seq = redis.call('INCR', KEYS[5])
    local mk = K.m .. id
    redis.call('DEL', mk)
    redis.call('HSET', mk, 'st', 'queued', 'att', ARGV[10], 'max', ARGV[8], 'pri', ARGV[5], 'seq', seq,
      'vt', ARGV[7], 'exp', ARGV[9], 'pl', ARGV[6])
    if ARGV[11] then
      -- A delivery carried over from the record: claimed under its lease until its deadline.
      local dl = tonumber(ARGV[12])
      redis.call('HSET', mk, 'st', 'claimed', 'tok', ARGV[11], 'dl', dl, 'la', ARGV[13])
      redis.call('ZADD', K.leased, dl, id)
      redis.call('ZADD', K.due, math.min(dl, exp), id)
      redis.call('ZADD', K.gdue, math.min(dl, exp), member)
      return 1
    end
    redis.call('ZADD', K.ready, rank * RANK_SPAN + seq, id)
    redis.call('ZADD', K.due, exp, id)
    redis.call('ZADD', K.gdue, exp, member)
    return 1
    """)

    /// KEYS ready, leased, due, gdue. ARGV message-hash prefix, queue, now, max, retention,
    /// max lease total, then `max` fresh tokens. Returns {transitions (id, state, attempts)...},
    /// {leases (id, token, deadline, attempts, rank, payload)...}.
    static let claim = RedisScript(prelude + """
    local K = {ready = KEYS[1], leased = KEYS[2], due = KEYS[3], gdue = KEYS[4], m = ARGV[1]}
    local queue, now, max, ret, total = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
    local transitions = {}
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', K.due, '-inf', now)) do
      local state, att = apply_due(K, queue, id, now, ret)
      if state then
        transitions[#transitions + 1] = id
        transitions[#transitions + 1] = state
        transitions[#transitions + 1] = att
      end
    end
    local leases = {}
    local used = 0
    for _, id in ipairs(redis.call('ZRANGE', K.ready, 0, max - 1)) do
      local mk = K.m .. id
      redis.call('ZREM', K.ready, id)
      local f = redis.call('HMGET', mk, 'st', 'att', 'vt', 'exp', 'pri', 'pl')
      if f[1] == 'queued' then
        used = used + 1
        local token = ARGV[6 + used]
        local att = tonumber(f[2]) + 1
        local exp = tonumber(f[4])
        local dl = now + math.min(tonumber(f[3]), total)
        redis.call('HSET', mk, 'st', 'claimed', 'att', att, 'tok', token, 'dl', dl, 'la', now)
        redis.call('ZADD', K.leased, dl, id)
        redis.call('ZADD', K.due, math.min(dl, exp), id)
        redis.call('ZADD', K.gdue, math.min(dl, exp), id .. queue)
        leases[#leases + 1] = id
        leases[#leases + 1] = token
        leases[#leases + 1] = dl
        leases[#leases + 1] = att
        leases[#leases + 1] = tonumber(f[5])
        leases[#leases + 1] = f[6]
      end
    end
    return {transitions, leases}
    """)

    /// KEYS leased, due, gdue. ARGV message-hash prefix, queue, id, token, by, now, max lease
    /// total. Returns {'nf'} or {'ok' | 'conflict', status}.
    static let extend = RedisScript(prelude + """
    local K = {ready = '', leased = KEYS[1], due = KEYS[2], gdue = KEYS[3], m = ARGV[1]}
    local queue, id, token, by, now, total = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
    local member = id .. queue
    local mk = K.m .. id
    if not known(K, id, member, now) then return {'nf'} end
    local f = redis.call('HMGET', mk, 'st', 'tok', 'dl', 'exp', 'la')
    if f[1] ~= 'claimed' or f[2] ~= token or tonumber(f[3]) <= now or tonumber(f[4]) <= now then
      return {'conflict', status_of(mk)}
    end
    local dl = math.min(now + by, tonumber(f[5]) + total)
    local due = math.min(dl, tonumber(f[4]))
    redis.call('HSET', mk, 'dl', dl)
    redis.call('ZADD', K.leased, dl, id)
    redis.call('ZADD', K.due, due, id)
    redis.call('ZADD', K.gdue, due, member)
    return {'ok', status_of(mk)}
    """)

    /// KEYS ready, leased, due, gdue. ARGV message-hash prefix, queue, id, token, delay, now,
    /// retention. The lease ends (`dl` becomes now); out of attempts the message is
    /// dead-lettered, else queued again: in line at once, or after the delay (`av`).
    /// Returns {'nf'} or {'ok' | 'conflict', status}.
    static let release = RedisScript(prelude + """
    local K = {ready = KEYS[1], leased = KEYS[2], due = KEYS[3], gdue = KEYS[4], m = ARGV[1]}
    local queue, id, token, delay, now, ret = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
    local member = id .. queue
    local mk = K.m .. id
    local st = known(K, id, member, now)
    if not st then return {'nf'} end
    local f = redis.call('HMGET', mk, 'tok', 'dl', 'exp', 'att', 'max', 'seq', 'pri')
    if st ~= 'claimed' or f[1] ~= token or tonumber(f[2]) <= now or tonumber(f[3]) <= now then
      return {'conflict', status_of(mk)}
    end
    redis.call('HSET', mk, 'dl', now)
    if tonumber(f[4]) >= tonumber(f[5]) then
      finish(K, id, member, 'dead_lettered', now, ret)
      return {'ok', status_of(mk)}
    end
    local exp = tonumber(f[3])
    redis.call('HSET', mk, 'st', 'queued')
    redis.call('ZREM', K.leased, id)
    if delay == 0 then
      requeue(K, id, member, f[7], f[6], exp)
    else
      local av = now + delay
      redis.call('HSET', mk, 'av', av)
      redis.call('ZADD', K.due, math.min(av, exp), id)
      redis.call('ZADD', K.gdue, math.min(av, exp), member)
    end
    return {'ok', status_of(mk)}
    """)

    /// KEYS ready, leased, due, gdue. ARGV message-hash prefix, queue, id, token, succeeded
    /// ("1"/"0"), result, now, retention. Returns {'nf'} or {'ok' | 'done' | 'conflict', status}.
    static let complete = RedisScript(prelude + """
    local K = {ready = KEYS[1], leased = KEYS[2], due = KEYS[3], gdue = KEYS[4], m = ARGV[1]}
    local queue, id, token, ok, res, now, ret = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8])
    local member = id .. queue
    local mk = K.m .. id
    local st = known(K, id, member, now)
    if not st then return {'nf'} end
    local f = redis.call('HMGET', mk, 'tok', 'dl', 'exp', 'ok', 'res')
    if st == 'succeeded' or st == 'failed' then
      if f[1] == token and f[4] == ok and f[5] == res then return {'done', status_of(mk)} end
      return {'conflict', status_of(mk)}
    end
    if st ~= 'claimed' or f[1] ~= token or tonumber(f[2]) <= now or tonumber(f[3]) <= now then
      return {'conflict', status_of(mk)}
    end
    redis.call('HSET', mk, 'ok', ok, 'res', res)
    local state = 'failed'
    if ok == '1' then state = 'succeeded' end
    finish(K, id, member, state, now, ret)
    return {'ok', status_of(mk)}
    """)

    /// KEYS ready, leased, due, gdue. ARGV message-hash prefix, queue, id, now, retention.
    /// Returns {'nf'} or {'ok' | 'conflict', status}.
    static let cancel = RedisScript(prelude + """
    local K = {ready = KEYS[1], leased = KEYS[2], due = KEYS[3], gdue = KEYS[4], m = ARGV[1]}
    local queue, id, now, ret = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
    local member = id .. queue
    local mk = K.m .. id
    local st = known(K, id, member, now)
    if not st then return {'nf'} end
    if not is_live(st) then return {'conflict', status_of(mk)} end
    finish(K, id, member, 'canceled', now, ret)
    return {'ok', status_of(mk)}
    """)

    /// KEYS due, leased. Returns {queued, claimed}, read atomically. `due` holds every live
    /// message and `leased` the claimed ones; queued ones waiting out a release delay are not
    /// in `ready`, so the queued count is the difference.
    static let depth = RedisScript("""
    local live, claimed = redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2])
    return {live - claimed, claimed}
    """)

    /// KEYS gdue (one bucket's due set). ARGV now, limit, purge cap. Read only: walks the
    /// bucket's due entries in (score, member) order, as the sweep would, and returns them
    /// {member, score, kind, ...} with kind 1 for an entry the sweep would turn into a
    /// transition (a lapsed TTL or lease), 2 for a terminal message to forget, 0 for the rest
    /// (an index entry out of step, a release delay that is over). Stops after `limit`
    /// transitions, `cap` forgets or `limit + cap` entries, so the reply is bounded.
    static let sweepPeek = RedisScript(prelude + """
    local gdue = KEYS[1]
    local now, limit, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
    local out, n, purged, offset = {}, 0, 0, 0
    while true do
      local batch = redis.call('ZRANGEBYSCORE', gdue, '-inf', now, 'WITHSCORES', 'LIMIT', offset, 100)
      if #batch == 0 then return out end
      offset = offset + #batch / 2
      for i = 1, #batch, 2 do
        if n >= limit or purged >= cap or #out >= 3 * (limit + cap) then return out end
        local member = batch[i]
        local id, queue = string.sub(member, 1, 36), string.sub(member, 37)
        local kind = 0
        local base = string.sub(gdue, 1, #gdue - 3) .. #queue .. ':' .. queue .. ':'
        local f = redis.call('HMGET', base .. 'm:' .. id, 'st', 'exp', 'dl')
        if f[1] and not is_live(f[1]) then
          kind = 2
          purged = purged + 1
        elseif f[1] and (tonumber(f[2]) <= now or (f[1] == 'claimed' and tonumber(f[3]) <= now)) then
          kind = 1
          n = n + 1
        end
        out[#out + 1] = member
        out[#out + 1] = batch[i + 1]
        out[#out + 1] = kind
      end
    end
    """)

    /// KEYS gdue (one bucket's due set). ARGV bucket key prefix (`<ns>queue:{qb<k>}:`), now,
    /// retention, then due-set members chosen by a `sweepPeek`. Each is looked at again (another
    /// node may have swept it meanwhile): a terminal message past its retention is forgotten,
    /// a live one gets its due transition. Returns {position of the member in ARGV, queue, id,
    /// state, attempts, ...} for the transitions.
    static let sweep = RedisScript(prelude + """
    local gdue, prefix = KEYS[1], ARGV[1]
    local now, ret = tonumber(ARGV[2]), tonumber(ARGV[3])
    local out = {}
    for i = 4, #ARGV do
      local member = ARGV[i]
      local id, queue = string.sub(member, 1, 36), string.sub(member, 37)
      local base = prefix .. #queue .. ':' .. queue .. ':'
      local K = {ready = base .. 'ready', leased = base .. 'leased', due = base .. 'due', gdue = gdue, m = base .. 'm:'}
      local f = redis.call('HMGET', K.m .. id, 'st', 'fa')
      if f[1] and not is_live(f[1]) then
        if tonumber(f[2]) <= now then forget(K, id, member) end
      else
        local state, att = apply_due(K, queue, id, now, ret)
        if state then
          out[#out + 1] = i - 3
          out[#out + 1] = queue
          out[#out + 1] = id
          out[#out + 1] = state
          out[#out + 1] = att
        end
      end
    end
    return out
    """)
}
