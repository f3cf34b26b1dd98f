-- GET one of 1,000 keys, linearizable (the default: a ReadIndex barrier).
local token = os.getenv("KV_BENCH_TOKEN")
local counter = 0
request = function()
    counter = counter + 1
    return wrk.format("GET", "/v1/kv/bench/" .. (counter % 1000), {["Authorization"] = "Bearer " .. token})
end
