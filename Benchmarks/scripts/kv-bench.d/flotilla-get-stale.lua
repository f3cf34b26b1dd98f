-- GET one of 1,000 keys from the answering server's copy (?stale=true).
local token = os.getenv("KV_BENCH_TOKEN")
local counter = 0
request = function()
    counter = counter + 1
    return wrk.format("GET", "/v1/kv/bench/" .. (counter % 1000) .. "?stale=true", {["Authorization"] = "Bearer " .. token})
end
