"""The random-weight nemotron GGUF (bench/event.py's LLM): llama.cpp's `nemotron` architecture,
quantised to Q4_K_M by llama.cpp's own quantiser, loaded through the server's real
`LlamaCppLLM`. Scaled down here (256 wide, 2 layers) so it builds in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import pytest

from ai_server.models.llm import GenerationRequest, LlamaCppLLM
from ai_server.models.tiny import NEMOTRON_MINI_4B, build_nemotron_gguf, nemotron_gguf

SMALL = {
    "n_embd": 256,
    "n_layer": 2,
    "n_head": 2,
    "n_head_kv": 1,
    "n_ff": 768,
    "vocab_size": 8192,
}
ENGLISH = (
    "Camera Front door saw a person walking up the driveway at night while the household was "
    "away. The person stood at the front door for two minutes, then left towards the street."
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nemotron")


@pytest.fixture(scope="module")
def small_gguf(cache: Path) -> Path:
    return nemotron_gguf(cache, threads=1, **SMALL)


def test_file_has_the_nemotron_architecture_and_q4_k_m_tensors(small_gguf: Path) -> None:
    reader = gguf.GGUFReader(small_gguf)
    fields = reader.fields
    arch = fields["general.architecture"]
    assert bytes(arch.parts[arch.data[0]]).decode() == "nemotron"
    file_type = fields["general.file_type"]
    assert int(file_type.parts[file_type.data[0]][0]) == gguf.LlamaFileType.MOSTLY_Q4_K_M
    rope = fields["nemotron.rope.dimension_count"]
    assert int(rope.parts[rope.data[0]][0]) == SMALL["n_embd"] // SMALL["n_head"] // 2  # partial
    types = {t.name: t.tensor_type for t in reader.tensors}
    layer = {name.split(".", 2)[2] for name in types if name.startswith("blk.0.")}
    # LayerNorm with bias, attention without bias, an MLP without gate (squared ReLU).
    assert layer == {
        "attn_norm.weight",
        "attn_norm.bias",
        "attn_q.weight",
        "attn_k.weight",
        "attn_v.weight",
        "attn_output.weight",
        "ffn_norm.weight",
        "ffn_norm.bias",
        "ffn_up.weight",
        "ffn_down.weight",
    }
    assert {"token_embd.weight", "output.weight", "output_norm.bias"} <= set(types)
    quantised = gguf.GGMLQuantizationType
    assert types["blk.0.attn_q.weight"] == quantised.Q4_K
    assert types["blk.0.ffn_up.weight"] == quantised.Q4_K
    # Q4_K_M keeps some tensors at Q6_K (the output matrix, half of attn_v / ffn_down).
    assert types["output.weight"] == quantised.Q6_K
    assert types["blk.0.attn_norm.bias"] == quantised.F32
    assert len(reader.fields["tokenizer.ggml.tokens"].data) == SMALL["vocab_size"]


def test_builder_is_cached_by_its_parameters(cache: Path, small_gguf: Path) -> None:
    mtime = small_gguf.stat().st_mtime_ns
    again = nemotron_gguf(cache, **SMALL)
    assert again == small_gguf and again.stat().st_mtime_ns == mtime  # reused, not rebuilt
    other = nemotron_gguf(cache, **{**SMALL, "n_layer": 1})
    assert other != small_gguf
    assert not list(cache.glob(".*tmp"))  # no scratch file left behind


async def test_loads_and_generates_through_the_server_backend(small_gguf: Path) -> None:
    llm = LlamaCppLLM(str(small_gguf), slots=1, threads=1)
    llm.load()
    try:
        llm.warmup()
        # English costs ~4 characters a token, as with the real tokenizer (the prompt's length
        # in tokens is what the LLM stage's time depends on).
        assert len(ENGLISH) / llm.count_tokens(ENGLISH) >= 3.0
        schema = {
            "type": "object",
            "properties": {"level": {"enum": ["low", "high"]}},
            "required": ["level"],
            "additionalProperties": False,
        }
        completion = await llm.generate(
            GenerationRequest(
                messages=[
                    {"role": "system", "content": "Rate the risk."},
                    {"role": "user", "content": ENGLISH},
                ],
                max_tokens=32,
                json_schema=schema,
            )
        )
    finally:
        llm.unload()
    assert json.loads(completion.text)["level"] in ("low", "high")
    assert completion.usage.prompt_tokens > 20


def test_full_size_defaults_are_nemotron_mini_4b() -> None:
    # hidden 3072 = 24 heads x 128; 8 KV heads; MLP 9216; vocabulary 256000 (config.json).
    assert NEMOTRON_MINI_4B == {
        "n_embd": 3072,
        "n_layer": 32,
        "n_head": 24,
        "n_head_kv": 8,
        "n_ff": 9216,
        "vocab_size": 256000,
        "context_length": 4096,
    }


def test_shapes_that_do_not_divide_into_heads_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="heads"):
        build_nemotron_gguf(tmp_path / "x.gguf", n_embd=250, n_head=3)
