# Schemathesis hooks for scripts/api-fuzz: how to read the API's JSON Lines responses (the log
# follow stream), so that their records are checked against the document like any JSON answer.
import json

import schemathesis


@schemathesis.deserializer("application/jsonl")
def deserialize_json_lines(ctx, response):
    return [json.loads(line) for line in response.content.decode("utf-8").splitlines() if line.strip()]
