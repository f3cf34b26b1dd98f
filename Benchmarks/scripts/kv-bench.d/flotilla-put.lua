-- PUT a 256-byte value to one of 1,000 keys, in turn (wrk, one state per thread).
local token = os.getenv("KV_BENCH_TOKEN")
local value = string.rep("v", 256)
local counter = 0
request = function()
    counter = counter + 1
    return wrk.format("PUT", "/v1/kv/bench/" .. (counter % 1000), {["Authorization"] = "Bearer " .. token}, value)
end
