#!/usr/bin/env python3
"""The official `openai` Python client against a running `lamina serve` (argv[1] is its base
URL, e.g. http://127.0.0.1:8080): chat, streaming with usage, stop, logprobs, completions,
embeddings (the client's default base64 and floats), models, and errors. Exits non-zero
with a message on the first failed check. Run by cli/tests/serve/main.rs."""

import math
import sys

import openai
from openai import OpenAI

base = sys.argv[1]
client = OpenAI(base_url=base + "/v1", api_key="not-checked", max_retries=0, timeout=300)
checks = 0


def check(cond, what):
    global checks
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    checks += 1


model = client.models.list().data[0].id
check(model, "models.list names the model")

question = [{"role": "system", "content": "Answer in one sentence."}, {"role": "user", "content": "What is the capital of France?"}]
r = client.chat.completions.create(model=model, messages=question, max_tokens=24, temperature=0)
answer = r.choices[0].message.content
check("Paris" in answer, f"chat answer mentions Paris: {answer!r}")
check(r.choices[0].finish_reason in ("stop", "length"), "finish_reason")
check(r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens, "usage adds up")
check(r.object == "chat.completion" and r.id.startswith("chatcmpl-"), "chat object and id")

stream = client.chat.completions.create(model=model, messages=question, max_tokens=24, temperature=0, stream=True,
                                        stream_options={"include_usage": True})
text, finish, usage, roles = "", None, None, []
for chunk in stream:
    if chunk.usage:
        usage = chunk.usage
    for c in chunk.choices:
        if c.delta.role:
            roles.append(c.delta.role)
        text += c.delta.content or ""
        finish = c.finish_reason or finish
check(text == answer, f"the stream gives the same greedy text: {text!r} vs {answer!r}")
check(roles == ["assistant"], "the first chunk names the role")
check(finish == r.choices[0].finish_reason, "stream finish_reason")
check(usage is not None and usage.completion_tokens == r.usage.completion_tokens, "stream usage chunk")

r = client.chat.completions.create(model=model, messages=question, max_tokens=3, temperature=0)
check(r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 3, "max_tokens gives length")

r = client.chat.completions.create(model=model, messages=question, max_tokens=24, temperature=0, stop=["Paris"])
check("Paris" not in r.choices[0].message.content and r.choices[0].finish_reason == "stop", "stop string")

r = client.chat.completions.create(model=model, messages=question, max_tokens=4, temperature=0, logprobs=True,
                                   top_logprobs=3)
lp = r.choices[0].logprobs.content
check(len(lp) == r.usage.completion_tokens, "one logprob entry per token")
check(all(e.logprob <= 0 and len(e.top_logprobs) == 3 for e in lp), "logprobs and 3 alternatives")
check(all(abs(e.logprob - e.top_logprobs[0].logprob) < 1e-5 for e in lp), "greedy picks the most likely token")

r = client.chat.completions.create(model=model, messages=question, max_tokens=8, temperature=0.9, top_p=0.9,
                                   seed=42, frequency_penalty=0.5, presence_penalty=0.5)
again = client.chat.completions.create(model=model, messages=question, max_tokens=8, temperature=0.9, top_p=0.9,
                                       seed=42, frequency_penalty=0.5, presence_penalty=0.5)
check(r.choices[0].message.content == again.choices[0].message.content, "a seed reproduces a sampled answer")

c = client.completions.create(model=model, prompt="The capital of France is", max_tokens=8, temperature=0)
check("Paris" in c.choices[0].text and c.object == "text_completion", f"completion: {c.choices[0].text!r}")
pieces = [ch.choices[0].text for ch in client.completions.create(model=model, prompt="The capital of France is",
                                                                  max_tokens=8, temperature=0, stream=True)
          if ch.choices]
check("".join(pieces) == c.choices[0].text, "streamed completion equals the whole one")
c = client.completions.create(model=model, prompt="The capital of France is", max_tokens=2, temperature=0,
                              logprobs=2)
check(len(c.choices[0].logprobs.tokens) == 2 and len(c.choices[0].logprobs.top_logprobs[0]) == 2, "legacy logprobs")

e = client.embeddings.create(model=model, input=["The cat sat on the mat.", "A dog barked."])
vecs = [d.embedding for d in e.data]
check(len(vecs) == 2 and len(vecs[0]) == len(vecs[1]) > 0, "two embeddings")
check(all(abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-4 for v in vecs), "embeddings are L2-normalised")
f = client.embeddings.create(model=model, input="The cat sat on the mat.", encoding_format="float")
check(max(abs(a - b) for a, b in zip(f.data[0].embedding, vecs[0])) < 1e-6, "float and base64 agree")
check(e.usage.prompt_tokens > 0, "embedding usage")


def refused(status, param=None, **kwargs):
    try:
        client.chat.completions.create(model=model, **kwargs)
    except openai.APIStatusError as err:
        body = err.body or {}
        check(err.status_code == status, f"status {err.status_code} != {status} for {kwargs}")
        check(isinstance(body.get("message"), str) and body.get("type"), f"OpenAI error object: {body}")
        if param:
            check(body.get("param") == param, f"param {body.get('param')} != {param}")
        return
    check(False, f"expected {status} for {kwargs}")


refused(400, "messages", messages=[])
refused(400, "temperature", messages=question, temperature=7)
refused(400, "n", messages=question, n=2)
refused(400, "messages[0]", messages=[{"role": "wizard", "content": "hi"}])
refused(400, "max_tokens", messages=question, max_tokens=10 ** 9)
refused(400, "messages", messages=[{"role": "user", "content": "word " * 5000}])
print(f"ok: {checks} checks through the openai client {openai.__version__}")
