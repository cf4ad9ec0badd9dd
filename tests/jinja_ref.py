#!/usr/bin/python3
"""Reference renderer for qfit's Jinja engine tests: Hugging Face apply_chat_template semantics.

Usage: /usr/bin/python3 tests/jinja_ref.py INPUT.json
       /usr/bin/python3 tests/jinja_ref.py --batch INPUTS.json
INPUT.json: {"template": str, "messages": [...], "tools": [...]? , "add_generation_prompt": bool,
             "bos_token": str, "eos_token": str, "extra": {...}?}
Writes the rendered text to stdout as UTF-8 bytes, nothing added. When jinja2 raises, writes
"error: <type>: <message>" to stderr and exits 1.
--batch: INPUTS.json is a JSON array of such objects; writes a JSON array with one
{"output": str} or {"error": str} per input (one interpreter for many renders).

The environment is the one transformers builds in
utils/chat_template_utils.py (_compile_jinja_template): ImmutableSandboxedEnvironment with
trim_blocks, lstrip_blocks and the loopcontrols extension, tojson = json.dumps(ensure_ascii=False,
indent, separators, sort_keys=False), globals raise_exception and strftime_now. strftime_now uses
QFIT_TEMPLATE_NOW (seconds since the epoch, UTC) when set so tests are deterministic; qfit honours
the same variable.
"""
import json
import os
import sys
from datetime import datetime, timezone

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


def strftime_now(format):
    now = os.environ.get("QFIT_TEMPLATE_NOW")
    if now is not None:
        return datetime.fromtimestamp(int(now), tz=timezone.utc).strftime(format)
    return datetime.now().strftime(format)


def render(spec):
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    kwargs = {
        "messages": spec["messages"],
        "add_generation_prompt": spec.get("add_generation_prompt", False),
        "bos_token": spec.get("bos_token", ""),
        "eos_token": spec.get("eos_token", ""),
    }
    if spec.get("tools") is not None:
        kwargs["tools"] = spec["tools"]
    kwargs.update(spec.get("extra") or {})
    return env.from_string(spec["template"]).render(**kwargs)


def main():
    batch = sys.argv[1] == "--batch"
    with open(sys.argv[-1], "rb") as f:
        spec = json.loads(f.read().decode("utf-8"))
    if batch:
        results = []
        for one in spec:
            try:
                results.append({"output": render(one)})
            except Exception as e:  # every failure of jinja2 (syntax, undefined, raise_exception, ...)
                results.append({"error": "%s: %s" % (type(e).__name__, e)})
        sys.stdout.buffer.write(json.dumps(results, ensure_ascii=True).encode("ascii"))
        return
    try:
        out = render(spec)
    except Exception as e:
        sys.stderr.write("error: %s: %s\n" % (type(e).__name__, e))
        sys.exit(1)
    sys.stdout.buffer.write(out.encode("utf-8", "surrogatepass"))


if __name__ == "__main__":
    main()
