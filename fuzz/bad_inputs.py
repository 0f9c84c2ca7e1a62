#!/usr/bin/env python3
"""Runs the real `flas` program on one bad input of each class and prints the Markdown table of
docs/reliability.md (class, what was changed, the exact message the user sees).

    python3 fuzz/bad_inputs.py build/examples/flas_cli/flas > /tmp/table.md

Every case starts from a valid file of the repository (the bundled chat model, its flow, AxBench rows,
a training state made by a one-step run) and breaks one thing."""
import json, os, resource, shutil, struct, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAS = os.path.abspath(sys.argv[1])
MODEL = os.path.join(ROOT, "models/tiny-gemma2-chat")
FLOW = os.path.join(ROOT, "models/tiny-gemma2-chat-flow")
ROWS = os.path.join(ROOT, "data/axbench/concept10_prod_2b_l20_v1_train.jsonl")
work = tempfile.mkdtemp(prefix="flas_bad_inputs_")
rows_out = []


def limit_memory():
    # A reader that sizes a table from a corrupt count must fail, not take the machine (4 GB cap).
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def run(args):
    try:
        p = subprocess.run([FLAS] + args, capture_output=True, text=True, errors="replace", timeout=300,
                           preexec_fn=limit_memory)
    except subprocess.TimeoutExpired:
        return "(no answer after 300 s: killed)"
    lines = [l for l in (p.stderr + p.stdout).splitlines() if "error" in l.lower() or "warning" in l.lower()
             or "dropping" in l]
    msg = lines[-1] if lines else f"(exit {p.returncode}, no message)"
    return msg.replace(work, "/tmp/x").replace(ROOT + "/", "").replace("|", "\\|")


def model_copy(name):
    d = os.path.join(work, name)
    os.makedirs(d)
    for f in os.listdir(MODEL):
        os.symlink(os.path.join(MODEL, f), os.path.join(d, f))
    return d


def replace(d, fname, data):
    os.unlink(os.path.join(d, fname))
    with open(os.path.join(d, fname), "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def st(header, data=b"", raw_header=None, length=None):
    h = raw_header if raw_header is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(h) if length is None else length) + h + data


def generate(d):
    return run(["generate", "--model", d, "--prompt", "hi", "--max-new-tokens", "1"])


print("| input | bad input | what the user sees (stderr) |")
print("|---|---|---|", flush=True)


def case(group, what, msg):
    rows_out.append(f"| {group} | {what} | `{msg}` |")
    print(rows_out[-1], flush=True)


# --- safetensors (the model's weights) --------------------------------------------------------------
real = open(os.path.join(MODEL, "model.safetensors"), "rb").read()
n = struct.unpack("<Q", real[:8])[0]
real_header = json.loads(real[8:8 + n])
first = sorted((k for k in real_header if k != "__metadata__"), key=lambda k: real_header[k]["data_offsets"][0])[0]
st_cases = [
    ("5-byte file", b"\x01\x02\x03\x04\x05"),
    ("header length 2^40", struct.pack("<Q", 1 << 40) + b"{}"),
    ("truncated inside the header", real[: 8 + n // 2]),
    ("truncated inside the data", real[: len(real) // 2]),
    ("header is not JSON", st(None, raw_header=b"{\"a\": [1, 2")),
    ("header is a JSON array", st([1, 2])),
    ("unknown dtype", st({"w": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}}, b"\0")),
    ("negative dimension", st({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4)),
    ("data_offsets reversed", st({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}, b"\0" * 4)),
    ("data_offsets past the end", st({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 4)),
    ("size does not match the shape", st({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8)),
    ("shape overflows", st({"w": {"dtype": "F32", "shape": [1 << 62, 8], "data_offsets": [0, 8]}}, b"\0" * 8)),
    ("tensors overlap", st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                            "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12)),
    ("metadata value not a string", st({"__metadata__": {"format": 1}})),
    ("a tensor the model needs is missing", None),
    ("a tensor has the wrong shape", None),
]
for what, data in st_cases:
    d = model_copy("st_" + str(len(rows_out)))
    if what == "a tensor the model needs is missing":
        h = dict(real_header); del h[first]
        data = st(h, real[8 + n:])
    elif what == "a tensor has the wrong shape":
        h = json.loads(json.dumps(real_header)); h[first]["shape"] = list(reversed(h[first]["shape"]))
        if h[first]["shape"] == real_header[first]["shape"]:
            h[first]["shape"] = [1, h[first]["shape"][0] * (h[first]["shape"][1] if len(h[first]["shape"]) > 1 else 1)]
        data = st(h, real[8 + n:])
    replace(d, "model.safetensors", data)
    case("safetensors", what, generate(d))

# --- sharded checkpoint index ----------------------------------------------------------------------
for what, index in [
    ("index is not JSON", "{\"weight_map\": "),
    ("no weight_map", json.dumps({"metadata": {}})),
    ("shard outside the folder", json.dumps({"weight_map": {first: "../model.safetensors"}})),
    ("shard file missing", json.dumps({"weight_map": {first: "model-00001-of-00002.safetensors"}})),
    ("tensor not in its shard", json.dumps({"weight_map": {"not.a.tensor": "shard.safetensors"}})),
]:
    d = os.path.join(work, "idx_" + str(len(rows_out)))
    os.makedirs(d)
    for f in ("config.json", "tokenizer.model", "generation_config.json"):
        os.symlink(os.path.join(MODEL, f), os.path.join(d, f))
    os.symlink(os.path.join(MODEL, "model.safetensors"), os.path.join(d, "shard.safetensors"))
    open(os.path.join(d, "model.safetensors.index.json"), "w").write(index)
    case("checkpoint index", what, generate(d))

# --- config.json ------------------------------------------------------------------------------------
cfg = json.load(open(os.path.join(MODEL, "config.json")))
def cfg_case(what, change):
    c = json.loads(json.dumps(cfg)); change(c)
    d = model_copy("cfg_" + str(len(rows_out)))
    replace(d, "config.json", c if isinstance(c, str) else json.dumps(c))
    case("config.json", what, generate(d))
d = model_copy("cfg_text"); replace(d, "config.json", "{\"model_type\": \"gemma2\",")
case("config.json", "not JSON", generate(d))
cfg_case("another architecture", lambda c: c.update(model_type="llama"))
cfg_case("required key missing", lambda c: c.pop("hidden_size"))
cfg_case("wrong type", lambda c: c.update(num_hidden_layers="4"))
cfg_case("non-positive size", lambda c: c.update(intermediate_size=0))
cfg_case("heads not a multiple of KV heads", lambda c: c.update(num_key_value_heads=3))
cfg_case("scaled RoPE", lambda c: c.update(rope_scaling={"rope_type": "linear", "factor": 2.0}))
cfg_case("another activation", lambda c: c.update(hidden_activation="gelu"))
cfg_case("layer_types count", lambda c: c.update(layer_types=["sliding_attention"]))
cfg_case("eos id outside the vocabulary", lambda c: c.update(eos_token_id=[1, 10 ** 9]))
cfg_case("absurd layer count", lambda c: (c.pop("layer_types", None), c.update(num_hidden_layers=10 ** 15)))

# --- tokenizer ---------------------------------------------------------------------------------------
d = model_copy("tok_garbage"); replace(d, "tokenizer.model", b"\x0a\x05hello" * 10)
case("tokenizer.model", "not a SentencePiece model", generate(d))
d = model_copy("tok_missing"); os.unlink(os.path.join(d, "tokenizer.model"))
case("tokenizer.model", "missing", generate(d))

# --- flow checkpoint + JSON ---------------------------------------------------------------------------
flow_real = open(os.path.join(FLOW, "flow.safetensors"), "rb").read()
fn = struct.unpack("<Q", flow_real[:8])[0]
flow_header = json.loads(flow_real[8:8 + fn])
flow_meta = json.load(open(os.path.join(FLOW, "flow.json")))
def steer(weights, meta):
    d = os.path.join(work, "flow_" + str(len(rows_out))); os.makedirs(d)
    if isinstance(weights, bytes):
        open(os.path.join(d, "flow.safetensors"), "wb").write(weights)
    else:
        os.symlink(os.path.join(FLOW, "flow.safetensors"), os.path.join(d, "flow.safetensors"))
    open(os.path.join(d, "flow.json"), "w").write(meta if isinstance(meta, str) else json.dumps(meta))
    return run(["steer", "--model", MODEL, "--flow", os.path.join(d, "flow.safetensors"), "--concept", "cars",
                "--flowtime", "1", "--prompt", "hi", "--max-new-tokens", "1"])
def flow_with(change):
    h = json.loads(json.dumps(flow_header)); change(h)
    return st(h, flow_real[8 + fn:])
some = sorted(k for k in flow_header if k.startswith("blocks.0."))[0]
case("flow JSON", "not JSON", steer(None, "{\"layer\": 3,"))
case("flow JSON", "a key of the wrong type", steer(None, dict(flow_meta, layer="three")))
case("flow JSON", "layer out of range", steer(None, dict(flow_meta, layer=99)))
case("flow weights", "a parameter missing", steer(flow_with(lambda h: h.pop(some)), flow_meta))
case("flow weights", "a parameter of the wrong shape", steer(flow_with(lambda h: h[some].update(shape=[h[some]["shape"][0] // 2] + h[some]["shape"][1:])), flow_meta))
case("flow weights", "an unexpected tensor", steer(flow_with(lambda h: h.__setitem__("blocks.0.extra", dict(h[some]))), flow_meta))
case("flow weights", "not a flow (no blocks)", steer(flow_with(lambda h: [h.__setitem__(k.replace("blocks.", "layers."), h.pop(k)) for k in list(h) if k.startswith("blocks.")]), flow_meta))
case("flow weights", "block number beyond int", steer(flow_with(lambda h: h.__setitem__("blocks.99999999999.cross_gate", dict(h[some]))), flow_meta))

# --- AxBench rows ------------------------------------------------------------------------------------
good_row = open(ROWS).readline()
def train(data_text, extra=()):
    d = os.path.join(work, "rows_" + str(len(rows_out))); os.makedirs(d)
    f = os.path.join(d, "rows.jsonl"); open(f, "w").write(data_text)
    return run(["train", "--model", MODEL, "--data", f, "--layer", "1", "--steps", "1", "--out", os.path.join(d, "out")] + list(extra))
case("AxBench rows", "a line that is not JSON", train(good_row + "{\"input\": \"q\",\n"))
case("AxBench rows", "a field missing", train(good_row + json.dumps({"input": "q", "output": "a", "category": "positive"}) + "\n"))
case("AxBench rows", "no positive rows", train(json.dumps({"input": "q", "output": "a", "output_concept": "c", "category": "negative"}) + "\n"))
case("AxBench rows", "empty concept", train(json.dumps({"input": "q", "output": "a", "output_concept": " ", "category": "positive"}) + "\n"))

# --- training state -----------------------------------------------------------------------------------
rows_small = "".join(l for i, l in enumerate(open(ROWS)) if i < 400 and json.loads(l)["category"] == "positive")
state_base = os.path.join(work, "state_base"); os.makedirs(state_base)
open(os.path.join(state_base, "rows.jsonl"), "w").write(rows_small)
train_args = ["train", "--model", MODEL, "--data", os.path.join(state_base, "rows.jsonl"), "--layer", "1",
              "--batch-size", "1", "--val-every", "1", "--max-len", "32", "--val-samples", "1", "--euler-steps", "1"]
subprocess.run([FLAS] + train_args + ["--steps", "1", "--out", os.path.join(state_base, "out")], capture_output=True, check=True)
train_args += ["--steps", "2"]
def resume(what, change):
    d = os.path.join(work, "state_" + str(len(rows_out)))
    shutil.copytree(os.path.join(state_base, "out"), d)
    change(d)
    case("training state", what, run(train_args + ["--out", d, "--resume"]))
def edit_state(d, f):
    p = os.path.join(d, "state-1", "state.json"); j = json.load(open(p)); f(j); json.dump(j, open(p, "w"))
resume("latest names a missing folder", lambda d: open(os.path.join(d, "latest"), "w").write("state-7\n"))
resume("state.json not JSON", lambda d: open(os.path.join(d, "state-1", "state.json"), "w").write("{\"step\": 1,"))
resume("a field missing", lambda d: edit_state(d, lambda j: j.pop("cursor")))
resume("rng not a generator state", lambda d: edit_state(d, lambda j: j.update(rng="not numbers")))
resume("order names rows the data lacks", lambda d: edit_state(d, lambda j: j.update(order=[10 ** 6] * len(j["order"]))))
resume("cursor past the order", lambda d: edit_state(d, lambda j: j.update(cursor=-5)))
resume("flow parameters truncated", lambda d: open(os.path.join(d, "state-1", "flow.safetensors"), "r+b").truncate(1000))

# --- evaluation generations ----------------------------------------------------------------------------
ev = os.path.join(work, "eval"); os.makedirs(os.path.join(ev, "out"))
config = {"model": MODEL, "concept_data": [ROWS], "concepts": {"held_in": ["references to rental services and associated equipment"], "held_out": []},
          "instructions": {"file": os.path.join(ROOT, "data/alpaca_eval.json"), "first": 0, "count": 2},
          "methods": {"none": [0]}, "max_new_tokens": 2, "temperature": 0, "batch_size": 1, "out": os.path.join(ev, "out")}
json.dump(config, open(os.path.join(ev, "eval.json"), "w"))
subprocess.run([FLAS, "eval", "generate", "--config", os.path.join(ev, "eval.json"), "--quiet"], capture_output=True)
gen = os.path.join(ev, "out", "generations.jsonl")
lines = open(gen).read().splitlines(True)
open(gen, "w").write(lines[0] + "{\"method\": \"none\"}\n" + "".join(lines[1:]))
case("eval generations", "a bad line before the last", run(["eval", "generate", "--config", os.path.join(ev, "eval.json"), "--quiet"]))
open(gen, "w").write(lines[0] + lines[1][:20])
case("eval generations", "a torn last line (a kill mid-write): warning, redone", run(["eval", "generate", "--config", os.path.join(ev, "eval.json"), "--quiet"]))

shutil.rmtree(work)
