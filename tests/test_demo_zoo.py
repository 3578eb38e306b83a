"""The canopy-tiny zoo: deterministic generators and the committed variants themselves."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from bot.demo import build_zoo, corpus, formats, measure
from bot.zoo.variants import VariantRef, parse_variant

REPO = Path(__file__).resolve().parents[1]
ZOO = REPO / "models" / "canopy-tiny"
QUANTIZED = {"v1.1-int8": (8, 128), "v1.2-int4-g128": (4, 128), "v1.3-int4-g64": (4, 64), "v1.4-int2-g64": (2, 64)}
VARIANTS = ["v1.0-fp32", *QUANTIZED]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _eval_bytes(tmp_path: Path, seed: int) -> dict[str, bytes]:
    out = tmp_path / f"evals-{seed}-{len(list(tmp_path.iterdir()))}"
    return {p.name: p.read_bytes() for p in corpus.write_eval_files(out, seed)}


def test_corpus__same_seed_gives_identical_bytes(tmp_path):
    assert json.dumps(corpus.transcripts(7, 200)) == json.dumps(corpus.transcripts(7, 200))
    assert [p.to_json() for p in corpus.probes(7)] == [p.to_json() for p in corpus.probes(7)]
    assert _eval_bytes(tmp_path, 7) == _eval_bytes(tmp_path, 7)


def test_corpus__another_seed_gives_other_bytes(tmp_path):
    assert json.dumps(corpus.transcripts(7, 200)) != json.dumps(corpus.transcripts(8, 200))
    first, second = _eval_bytes(tmp_path, 7), _eval_bytes(tmp_path, 8)
    assert first.keys() == second.keys() and all(first[k] != second[k] for k in first)


def test_corpus__committed_eval_files_match_the_generator(tmp_path):
    for name, data in _eval_bytes(tmp_path, corpus.DEFAULT_SEED).items():
        assert (REPO / "evals" / "data" / name).read_bytes() == data, f"rebuild evals/data/{name}"


def test_corpus__probes_are_held_out_from_training():
    trained = {json.dumps(c["messages"][:2]) for c in corpus.transcripts()}
    probes = corpus.probes(count=200)
    unseen = [p for p in probes if json.dumps(list(p.messages)) not in trained]
    assert len(unseen) == len(probes)


@pytest.fixture(scope="module")
def tokenizers_by_seed(tmp_path_factory):
    from bot.demo import tokenizer

    out = {}
    for run, seed in enumerate((1234, 1234, 99)):
        folder = tmp_path_factory.mktemp(f"tok-{run}")
        tokenizer.save(tokenizer.train_tokenizer(seed), folder)
        out[run] = folder
    return out


@pytest.mark.slow
def test_tokenizer__same_seed_gives_identical_bytes(tokenizers_by_seed):
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        assert (tokenizers_by_seed[0] / name).read_bytes() == (tokenizers_by_seed[1] / name).read_bytes(), name


@pytest.mark.slow
def test_tokenizer__another_seed_gives_other_bytes(tokenizers_by_seed):
    assert _sha(tokenizers_by_seed[0] / "tokenizer.json") != _sha(tokenizers_by_seed[2] / "tokenizer.json")


def test_tokenizer__tools_reach_the_prompt():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(ZOO / "v1.0-fp32" / "weights")
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Find gravity."}]
    prompt = tok.apply_chat_template(messages, tools=list(corpus.TOOLS), tokenize=False, add_generation_prompt=True)
    assert "- search_textbook(query: string, chapter: integer): Search the class textbook." in prompt
    assert "- lookup_definition(term: string)" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


@pytest.mark.slow
def test_train__tiny_spec_twice_gives_identical_weights(tmp_path):
    from transformers import AutoTokenizer

    from bot.demo import train

    tok = AutoTokenizer.from_pretrained(ZOO / "v1.0-fp32" / "weights")
    spec = train.TrainSpec(hidden=64, heads=2, kv_heads=1, intermediate=128, layers=1, chats=24,
                           documents=8, epochs=1, batch_size=8, max_steps=3)
    digests = []
    for run in range(2):
        train.save(train.train(tok, spec, log=lambda _: None), tok, tmp_path / str(run))
        digests.append(_sha(tmp_path / str(run) / "model.safetensors"))
    assert digests[0] == digests[1]
    other = train.train(tok, train.TrainSpec(**{**spec.__dict__, "seed": 99}), log=lambda _: None)
    train.save(other, tok, tmp_path / "other")
    assert _sha(tmp_path / "other" / "model.safetensors") != digests[0]


def test_zoo__committed_files_match_their_digests():
    recorded = build_zoo.read_digests(REPO)
    assert recorded == build_zoo.digests(REPO)
    assert sum((REPO / p).stat().st_size for p in recorded) < 25_000_000


@pytest.mark.parametrize("variant", VARIANTS)
def test_zoo__variant_yaml_parses(variant):
    parsed = parse_variant(VariantRef("canopy-tiny", variant), (ZOO / variant / "variant.yaml").read_text())
    assert parsed.weights.path == f"models/canopy-tiny/{variant}/weights"
    assert (REPO / parsed.weights.path / "config.json").is_file()
    assert {"perplexity", "json_valid_rate", "tool_call_valid_rate"} <= set(parsed.measured)
    if variant in QUANTIZED:
        bits, group = QUANTIZED[variant]
        assert (parsed.quantization.bits, parsed.quantization.group_size) == (bits, group)
        assert parsed.quantization.algorithm == "GPTQ"
        assert (REPO / parsed.recipe).is_file() and (REPO / parsed.calibration.file).is_file()
        assert parsed.base_model == "canopy-tiny/v1.0-fp32"


def test_zoo__committed_variants_pass_the_zoo_check(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from gitops import demo_like_repo
    from test_check import run_check

    repo = demo_like_repo(tmp_path / "gitops")
    for variant in VARIANTS:  # the real folders replace the stand-ins
        shutil.rmtree(repo.path / "models" / "canopy-tiny" / variant)
        shutil.copytree(ZOO / variant, repo.path / "models" / "canopy-tiny" / variant)
    repo.commit("Real canopy-tiny zoo")
    for variant in QUANTIZED:
        repo.set_variant("test", f"canopy-tiny/{variant}")
        repo.commit(f"Promote {variant} to test")
        code, report, _ = run_check(repo, tmp_path)
        [promo] = report["promotions"]
        zoo = next(c for c in promo["checks"] if c["name"] == "zoo")
        assert zoo["verdict"] == "pass", zoo
        assert code == 0, report


@pytest.mark.parametrize("variant", list(QUANTIZED))
def test_zoo__quantized_weights_are_compressed_tensors(variant):
    config = json.loads((ZOO / variant / "weights" / "config.json").read_text())
    q = config["quantization_config"]
    assert q["quant_method"] == "compressed-tensors"
    assert q["quantization_status"] == "compressed"
    # int2 also quantizes the (then untied) lm_head; the others keep it in full precision.
    assert q["ignore"] == ([] if variant == "v1.4-int2-g64" else ["lm_head"])
    assert config["tie_word_embeddings"] is (variant != "v1.4-int2-g64")
    [group] = q["config_groups"].values()
    bits, group_size = QUANTIZED[variant]
    assert group["weights"]["num_bits"] == bits
    assert group["weights"]["strategy"] == "group" and group["weights"]["group_size"] == group_size
    assert group["input_activations"] is None  # weight-only (A16)
    assert "GPTQModifier" in (ZOO / variant / "recipe.yaml").read_text()


@pytest.fixture(scope="module")
def loaded():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(2)
    cache = {}

    def load(variant):
        if variant not in cache:
            weights = ZOO / variant / "weights"
            cache[variant] = (AutoModelForCausalLM.from_pretrained(weights).eval(), AutoTokenizer.from_pretrained(weights))
        return cache[variant]

    return load


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_zoo__each_variant_loads_and_answers(variant, loaded):
    model, tok = loaded(variant)
    probe = next(p for p in corpus.probes(count=20) if p.kind == "refusal")
    reply = measure.generate_reply(model, tok, probe.messages, probe.tools, max_new_tokens=24)
    assert formats.parse_text(reply).content or formats.parse_text(reply).tool_calls


@pytest.fixture(scope="module")
def json_rates(loaded):
    json_probes = [p for p in corpus.probes(count=build_zoo.PROBES) if p.kind == "json"]
    rates = {}
    for variant in ("v1.0-fp32", "v1.4-int2-g64"):
        model, tok = loaded(variant)
        rates[variant] = measure.format_scores(model, tok, json_probes).json_valid_rate
    return rates


@pytest.mark.slow
def test_zoo__baseline_answers_in_json_when_asked(json_rates):
    assert json_rates["v1.0-fp32"] >= 0.9, json_rates


@pytest.mark.slow
def test_zoo__int2_is_measurably_worse_on_json(json_rates):
    assert json_rates["v1.4-int2-g64"] < json_rates["v1.0-fp32"], json_rates


@pytest.mark.parametrize("variant", VARIANTS)
def test_zoo__recorded_measurements_order_the_variants(variant):
    """The numbers build_zoo recorded: int2 fails a +3% perplexity gate, the others pass it."""
    def measured(name):
        return yaml.safe_load((ZOO / name / "variant.yaml").read_text())["measured"]

    base, this = measured("v1.0-fp32"), measured(variant)
    increase = this["perplexity"] / base["perplexity"] - 1
    if variant == "v1.4-int2-g64":
        assert increase > 0.03
        assert this["json_valid_rate"] < base["json_valid_rate"]
        assert this["tool_call_valid_rate"] <= base["tool_call_valid_rate"] - 0.1
    else:
        assert increase <= 0.03
