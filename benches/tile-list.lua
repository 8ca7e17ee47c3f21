-- wrk script for benches/tiles-vs-martin.sh: requests the paths listed in the file $TILE_LIST
-- (one per line), with Accept-Encoding: gzip. With ONCE=1 every path is requested exactly once
-- (shared out among wrk's threads) and wrk stops; otherwise the list is cycled until the end of
-- wrk's duration.
local paths = {}
for line in io.lines(os.getenv("TILE_LIST")) do paths[#paths + 1] = line end
local once = os.getenv("ONCE") == "1"
local threads = tonumber(os.getenv("WRK_THREADS") or "2")
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter - 1)
end

function init(args)
  step = 0
end

function request()
  local index = id + step * threads + 1
  step = step + 1
  if index > #paths then
    if once then
      wrk.thread:stop()
    end
    index = ((index - 1) % #paths) + 1
  end
  return wrk.format("GET", paths[index], {["Accept-Encoding"] = "gzip"})
end
