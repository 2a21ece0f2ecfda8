-- wrk script for the FastTicket benchmark; configured through environment variables.
--
--   BENCH_METHOD       GET or POST (default GET)
--   BENCH_TOKENS       file of access tokens, one a line; each request carries the next one
--   BENCH_TOKEN_LIMIT  use only the first N tokens of the file
--   BENCH_THREADS      wrk's -t: thread i takes the tokens whose line number is i modulo it
--   BENCH_RESULT       where done() writes the run's JSON summary
--   BENCH_ONCE         "1": the flash sale and the waiting room's joins (run it with one thread).
--                      Each token sends the request once (books, or joins the queue); a 503
--                      is retried (up to BENCH_RETRIES times); every booking is traced; once no
--                      user is left to send, connections send GET /healthz instead; the thread
--                      stops when its bookings are answered and writes BENCH_MARKERS/done-<thread>
--
-- The statuses are counted in response(), latency percentiles come from wrk's own histogram, and
-- in flash mode the per-request trace is matched through the X-Request-ID header, which the
-- service echoes: one line per answer, "sent ms,done ms,status,attempt,token line,info,poll after"
-- (CLOCK_MONOTONIC; info is the error's code or the place's status; poll after a place's
-- poll_after_seconds).

local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local timespec = ffi.new("bench_timespec")
local CLOCK_MONOTONIC = 1

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1e6
end

local method = os.getenv("BENCH_METHOD") or "GET"
local once = os.getenv("BENCH_ONCE") == "1"

-- Setup and done: the main Lua state --------------------------------------------------------------

local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

local function json(value)
  local kind = type(value)
  if kind == "table" then
    local parts = {}
    if #value > 0 then
      for _, item in ipairs(value) do table.insert(parts, json(item)) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    for k, v in pairs(value) do table.insert(parts, json(tostring(k)) .. ":" .. json(v)) end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif kind == "string" then
    return '"' .. value:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
  elseif kind == "number" then
    return string.format("%.17g", value)
  elseif kind == "boolean" then
    return tostring(value)
  end
  return "null"
end

function done(summary, latency, requests)
  local result = {
    duration_us = summary.duration,
    requests = summary.requests,
    bytes = summary.bytes,
    errors = summary.errors,
    latency_us = {
      p50 = latency:percentile(50), p75 = latency:percentile(75), p90 = latency:percentile(90),
      p95 = latency:percentile(95), p99 = latency:percentile(99), max = latency.max, mean = latency.mean,
    },
    statuses = {}, samples = {}, wrapped = 0, fillers = 0, unanswered = 0, finished_threads = 0, trace = {},
  }
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts")) do
      result.statuses[tostring(status)] = (result.statuses[tostring(status)] or 0) + n
    end
    for status, body in pairs(thread:get("samples")) do result.samples[tostring(status)] = body end
    result.wrapped = result.wrapped + thread:get("wrapped")
    result.fillers = result.fillers + thread:get("fillers")
    result.unanswered = result.unanswered + thread:get("outstanding")
    if thread:get("finished") then result.finished_threads = result.finished_threads + 1 end
    for _, line in ipairs(thread:get("trace")) do table.insert(result.trace, line) end
  end
  local file = assert(io.open(os.getenv("BENCH_RESULT"), "w"))
  file:write(json(result))
  file:close()
end

-- Running: one Lua state per thread -------------------------------------------------------------

counts, samples, trace = {}, {}, {}
wrapped, fillers, outstanding, finished = 0, 0, 0, false

local tokens, token_lines, requests, index = {}, {}, {}, 0
local queue, head, tail, attempts, inflight, seq = {}, 1, 0, {}, {}, 0
local retries = tonumber(os.getenv("BENCH_RETRIES") or "5")
local filler_request
-- wrk calls request() once on thread 0 before the run, to see whether it pipelines: that call
-- must not take a user.
local verified = false

local function headers_for(token, request_id)
  local headers = {}
  if token then headers["Authorization"] = "Bearer " .. token end
  if request_id then headers["X-Request-ID"] = request_id end
  return headers
end

local function body_for()
  if method == "POST" then return "" end
  return nil
end

function init(args)
  local path = os.getenv("BENCH_TOKENS")
  if path and path ~= "" then
    local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
    local limit = tonumber(os.getenv("BENCH_TOKEN_LIMIT") or "0")
    local line_no = 0
    for line in io.lines(path) do
      line_no = line_no + 1
      if limit > 0 and line_no > limit then break end
      if (line_no - 1) % nthreads == thread_id then
        table.insert(tokens, line)
        table.insert(token_lines, line_no)
      end
    end
  end
  filler_request = wrk.format("GET", "/healthz", headers_for(nil, nil))
  if once then
    for i = 1, #tokens do queue[i] = i; attempts[i] = 0 end
    tail = #tokens
  elseif #tokens > 0 then
    for i, token in ipairs(tokens) do requests[i] = wrk.format(method, nil, headers_for(token, nil), body_for()) end
  else
    requests[1] = wrk.format(method, nil, headers_for(nil, nil), body_for())
  end
end

-- What the trace keeps of an answer's body: the error's code (or a place's status) and a place's
-- poll_after_seconds, e.g. "sold_out," or "waiting,3".
local function answer_info(body)
  body = body or ""
  local info = string.match(body, '"code"%s*:%s*"([%w_]+)"') or string.match(body, '"status"%s*:%s*"([%w_]+)"')
  return (info or "") .. "," .. (string.match(body, '"poll_after_seconds"%s*:%s*(%d+)') or "")
end

local function count(status, body)
  counts[status] = (counts[status] or 0) + 1
  if samples[status] == nil then samples[status] = string.sub(body or "", 1, 300) end
end

local function finish()
  finished = true
  local marker = io.open(os.getenv("BENCH_MARKERS") .. "/done-" .. thread_id, "w")
  if marker then marker:close() end
  wrk.thread:stop()
end

local function verifying()
  if verified then return false end
  verified = true
  return thread_id == 0
end

if once then
  -- No delay(): a connection that idles after connecting pins a gunicorn sync worker, which waits
  -- for its request, so a connection with no user left asks for /healthz (the last second only).
  function request()
    if verifying() then return filler_request end
    if head > tail then
      fillers = fillers + 1
      return filler_request
    end
    local token_index = queue[head]
    queue[head] = nil
    head = head + 1
    seq = seq + 1
    local request_id = "bench-" .. thread_id .. "-" .. seq
    inflight[request_id] = {token_index, now_ms()}
    outstanding = outstanding + 1
    return wrk.format(method, nil, headers_for(tokens[token_index], request_id), body_for())
  end

  function response(status, headers, body)
    local request_id = headers["X-Request-ID"] or headers["x-request-id"]
    local entry = request_id and inflight[request_id]
    if entry == nil then return end
    inflight[request_id] = nil
    outstanding = outstanding - 1
    local token_index, sent = entry[1], entry[2]
    attempts[token_index] = attempts[token_index] + 1
    table.insert(trace, string.format("%.3f,%.3f,%d,%d,%d,%s", sent, now_ms(), status, attempts[token_index],
      token_lines[token_index], answer_info(body)))
    count(status, body)
    if status == 503 and attempts[token_index] <= retries then
      tail = tail + 1
      queue[tail] = token_index
    end
    if head > tail and outstanding == 0 and not finished then finish() end
  end
else
  function request()
    if verifying() then return filler_request end
    index = index + 1
    if index > #requests then
      index = 1
      if #tokens > 0 then wrapped = wrapped + 1 end
    end
    return requests[index]
  end

  function response(status, headers, body)
    count(status, body)
  end
end
