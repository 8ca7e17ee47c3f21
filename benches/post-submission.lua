-- wrk script: POST a submission at one of a few points inside Nanterre's districts, with
-- valid answers to the demo campaign's form and a fresh Idempotency-Key (as the widget sends).
-- Used by benches/submissions-load.sh and benches/submissions-cpu.sh. With SPREAD_CLIENTS set in
-- the environment, each request comes from a client address of its own (X-Forwarded-For), as
-- thousands of households would (benches/submissions-cpu.sh with LIMITS=1).
local points = {
  {2.2066, 48.8924}, {2.1950, 48.8990}, {2.2150, 48.8850}, {2.2000, 48.8800},
  {2.2200, 48.8950}, {2.1900, 48.8900}, {2.2100, 48.9050}, {2.2250, 48.9000},
}
local bodies = {}
for i, p in ipairs(points) do
  bodies[i] = string.format(
    '{"type":"Feature","geometry":{"type":"Point","coordinates":[%f,%f]},' ..
    '"properties":{"households":%d,"connection":"adsl","building":"apartment"}}', p[1], p[2], i)
end
-- `thread_id` is a global: `thread:set` sets each thread's own global (a `local` here would be
-- an upvalue that `thread:set` cannot reach, and every thread would send the same keys).
thread_id = 0
local counter = 0
local threads = 0
local spread = os.getenv("SPREAD_CLIENTS") ~= nil
setup = function(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end
request = function()
  counter = counter + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = string.format("bench-%d-%d-%d", thread_id, counter, os.time()),
  }
  if spread then
    -- 10.{thread}.{counter / 256}.{counter % 256}: 65,536 addresses per thread before one
    -- comes back (half a minute at 2,000 a second), far from any address's burst of 10.
    headers["X-Forwarded-For"] = string.format("10.%d.%d.%d", thread_id % 256,
      math.floor(counter / 256) % 256, counter % 256)
  end
  return wrk.format("POST", nil, headers, bodies[(counter % #bodies) + 1])
end
