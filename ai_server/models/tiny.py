"""The `tiny` profile: random-weight models of the real architectures, built locally.

Weights cannot always be downloaded (tests, CI, offline smoke runs), so this module writes small
models in the same on-disk formats as the real checkpoints; the server then loads them through
exactly the same code path (`from_pretrained` on a folder). Their outputs are meaningless but
have the real shapes and types.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .clip import Clip
from .detector import Detector
from .llm import LLMBackend
from .vlm import Florence

_LOGGER = logging.getLogger(__name__)

# Bump when a recipe changes, so cached builds (the tiny models and bench/'s real-size random
# builds, each stamped with STAMP) are rebuilt.
TINY_VERSION = 1
STAMP = ".hsi-tiny.json"

COCO_LABELS = (
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic_light",
    "fire_hydrant",
    "stop_sign",
    "parking_meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports_ball",
    "kite",
    "baseball_bat",
    "baseball_glove",
    "skateboard",
    "surfboard",
    "tennis_racket",
    "bottle",
    "wine_glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot_dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted_plant",
    "bed",
    "dining_table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell_phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy_bear",
    "hair_drier",
    "toothbrush",
)
COCO_ID2LABEL = {i: name.replace("_", " ") for i, name in enumerate(COCO_LABELS)}


def _save_rtdetr_v2(
    target: Path,
    *,
    seed: int,
    image_size: int = 640,
    backbone: dict[str, Any] | None = None,
    **config: Any,
) -> None:
    """A random-weight RT-DETRv2 with COCO labels: `config` over RTDetrV2Config's defaults (the
    r50vd), `backbone` over a basic-block ResNet's (none: the default ResNet-50-vd)."""
    from transformers import (
        RTDetrImageProcessor,
        RTDetrResNetConfig,
        RTDetrV2Config,
        RTDetrV2ForObjectDetection,
    )

    torch.manual_seed(seed)
    if backbone is not None:
        config["backbone_config"] = RTDetrResNetConfig(
            layer_type="basic",
            out_features=["stage2", "stage3", "stage4"],  # type: ignore[call-arg]
            **backbone,
        )
    labels: dict[str, Any] = {
        "id2label": COCO_ID2LABEL,
        "label2id": {v: k for k, v in COCO_ID2LABEL.items()},
    }
    RTDetrV2ForObjectDetection(RTDetrV2Config(**labels, **config)).eval().save_pretrained(target)
    size = {"height": image_size, "width": image_size}
    RTDetrImageProcessor(size=size).save_pretrained(target)


def build_detector(target: Path, *, image_size: int = 640, seed: int = 0) -> None:
    """A ~2 MB RT-DETRv2 (ResNet backbone, 2 decoder layers, COCO labels) with random weights."""
    _save_rtdetr_v2(
        target,
        seed=seed,
        image_size=image_size,
        backbone={"embedding_size": 16, "hidden_sizes": [16, 32, 64, 128], "depths": [1, 1, 1, 1]},
        encoder_in_channels=[32, 64, 128],
        encoder_hidden_dim=32,
        encoder_ffn_dim=64,
        encoder_attention_heads=2,
        d_model=32,
        decoder_in_channels=[32, 32, 32],
        decoder_ffn_dim=64,
        decoder_layers=2,  # 1 fails on tied weights
        decoder_attention_heads=2,
        num_queries=20,
        num_denoising=0,
    )


def build_detector_r18vd(target: Path, *, seed: int = 0) -> None:
    """RT-DETRv2 r18vd (PekingU/rtdetr_v2_r18vd's architecture, the CPU default) with random
    weights (benchmarks only)."""
    _save_rtdetr_v2(
        target,
        seed=seed,
        backbone={
            "embedding_size": 64,
            "hidden_sizes": [64, 128, 256, 512],
            "depths": [2, 2, 2, 2],
            "downsample_in_bottleneck": False,
        },
        encoder_in_channels=[128, 256, 512],
        hidden_expansion=0.5,
        decoder_layers=3,
    )


def build_detector_r50vd(target: Path, *, seed: int = 0) -> None:
    """The real-size RT-DETRv2 r50vd architecture with random weights (benchmarks only)."""
    _save_rtdetr_v2(target, seed=seed)


def separate_scores(source: Path, target: Path, *, seed: int = 1) -> Path:
    """A copy of the RT-DETR(v2) checkpoint at `source`, re-initialised the way trained weights
    look (BatchNorm weights 1, Kaiming/Xavier weights, seeded), written to `target`.

    transformers draws BatchNorm weights from N(0, 0.02), so its random detectors tie every
    query-selection score and each runtime picks other queries among the ties (docs/server.md,
    "Agreement"). This copy's scores are separated: torch, ONNX Runtime and OpenVINO report the
    same detections, which the agreement tests and the runtime comparisons in bench/ need.
    """
    from transformers import AutoImageProcessor, AutoModelForObjectDetection

    model = AutoModelForObjectDetection.from_pretrained(source).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.fill_(1.0)
            elif isinstance(module, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(module.weight, generator=generator)
            elif isinstance(module, torch.nn.Linear):
                torch.nn.init.xavier_normal_(module.weight, generator=generator)
    model.save_pretrained(target)
    AutoImageProcessor.from_pretrained(source).save_pretrained(target)
    return target


# A few sentences for the tiny Florence-2 tokenizer: its own prompts plus security vocabulary.
_FLORENCE_CORPUS = (
    "What does the image describe?",
    "Describe in detail what is shown in the image.",
    "What is the text in the image?",
    "What is the text in the image, with regions?",
    "Locate the objects with category name in the image.",
    "What does the region describe?",
    "a person walking up the driveway carrying a package",
    "a red car parked in front of the garage door",
    "a delivery van on the street, a dog in the yard",
    "licence plate ABC 123 XYZ 789 0456",
)
_FLORENCE_POST_PROCESSING = (
    "ocr",
    "phrase_grounding",
    "pure_text",
    "description_with_bboxes",
    "description_with_polygons",
    "polygons",
    "bboxes",
    "description_with_bboxes_or_polygons",
)


def build_florence(target: Path, *, seed: int = 0, full_size: bool = False) -> None:
    """A <1 MB Florence-2 (DaViT vision tower, 1+1 layer BART) with a locally trained BPE.

    `full_size` builds the Florence-2-base architecture (0.23 B parameters, 768 px) with random
    weights and the same small tokenizer: for benchmarks only.
    """
    from tokenizers import ByteLevelBPETokenizer
    from transformers import (
        BartConfig,
        BartTokenizer,
        CLIPImageProcessor,
        Florence2Config,
        Florence2ForConditionalGeneration,
        Florence2Processor,
        Florence2VisionConfig,
        GenerationConfig,
    )

    torch.manual_seed(seed)
    target.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        _FLORENCE_CORPUS,
        vocab_size=400,
        min_frequency=1,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        show_progress=False,
    )
    vocab, merges = bpe.save_model(str(target))
    tokenizer = BartTokenizer(
        vocab_file=vocab, merges_file=merges, extra_special_tokens={"image_token": "<image>"}
    )
    tokenizer.add_tokens([f"<loc_{i}>" for i in range(1000)])
    Path(vocab).unlink()
    Path(merges).unlink()
    side, tokens = (768, 577) if full_size else (64, 5)
    image_processor = CLIPImageProcessor(
        size={"height": side, "width": side},
        crop_size={"height": side, "width": side},
        do_center_crop=False,
        image_seq_length=tokens,
    )
    processor = Florence2Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        post_processor_config={name: {} for name in _FLORENCE_POST_PROCESSING},
    )
    text_size = (
        {"d_model": 768, "layers": 6, "heads": 12, "ffn": 3072, "positions": 1024}
        if full_size
        else {"d_model": 32, "layers": 1, "heads": 2, "ffn": 64, "positions": 64}
    )
    text = BartConfig(
        vocab_size=len(tokenizer),
        d_model=text_size["d_model"],
        encoder_layers=text_size["layers"],
        decoder_layers=text_size["layers"],
        encoder_attention_heads=text_size["heads"],
        decoder_attention_heads=text_size["heads"],
        encoder_ffn_dim=text_size["ffn"],
        decoder_ffn_dim=text_size["ffn"],
        max_position_embeddings=text_size["positions"],  # the longest answer (+2)
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
    )
    vision = (
        Florence2VisionConfig(projection_dim=768)  # the defaults are Florence-2-base's DaViT
        if full_size
        else Florence2VisionConfig(
            depths=[1, 1, 1, 1],
            embed_dim=[8, 16, 16, 32],
            num_heads=[1, 2, 2, 4],
            num_groups=[1, 2, 2, 4],
            window_size=2,
            projection_dim=32,
        )
    )
    config = Florence2Config(
        text_config=text.to_dict(),
        vision_config=vision.to_dict(),
        image_token_id=tokenizer.image_token_id,
    )
    model = Florence2ForConditionalGeneration(config).eval()
    # Random weights emit EOS at once; real checkpoints ship their generation defaults the
    # same way (generation_config.json), so a few tokens are forced here, not in the server.
    model.generation_config = GenerationConfig(
        min_new_tokens=12,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
    )
    model.save_pretrained(target)
    processor.save_pretrained(target)


def build_clip(target: Path, *, seed: int = 0, full_size: bool = False) -> None:
    """A ~6 MB open_clip ViT (64 px, 1 layer, 32-d embeddings) in the hf-hub folder layout.

    `full_size` writes ViT-B/32 (151 M parameters, 224 px) with random weights: benchmarks only.
    """
    import open_clip
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model_cfg: dict[str, Any] = {
        "embed_dim": 32,
        "vision_cfg": {
            "image_size": 64,
            "layers": 1,
            "width": 32,
            "patch_size": 16,
            "head_width": 16,
        },
        "text_cfg": {
            "context_length": 77,
            "vocab_size": 49408,  # open_clip's own BPE vocabulary (ships with the package)
            "width": 32,
            "heads": 2,
            "layers": 1,
        },
    }
    if full_size:
        model_cfg = open_clip.get_model_config("ViT-B-32")
    model = open_clip.CLIP(**model_cfg)
    target.mkdir(parents=True, exist_ok=True)
    (target / "open_clip_config.json").write_text(
        json.dumps(
            {
                "model_cfg": model_cfg,
                "preprocess_cfg": {
                    "mean": [0.48145466, 0.4578275, 0.40821073],
                    "std": [0.26862954, 0.26130258, 0.27577711],
                },
            },
            indent=2,
        )
    )
    save_file(model.state_dict(), str(target / "open_clip_model.safetensors"))


# The chat format of Nemotron Mini (<extra_id_0>System, <extra_id_1>User/Assistant), as a Jinja
# template inside the GGUF file, so llama.cpp formats chats the way it does for the real model.
TINY_LLM_FILE = "tiny-llm-f32.gguf"
_TINY_LLM_WORDS = """
a about activity after all an and animal any are as at away be before by camera can car cars
carrying clothing confidence contribution critical day delivery description detected detections
do dog door driveway event events factor factors flags for from front garage has have high home
household if in is it its known level low medium mode more night no not of on one or other
package people person persons plate reasoning recent recommended_action risk risk_factors
risk_level risk_score same score seen severity street summary that the this time times to today
type unknown usual vehicle vehicles was when with yard zone zones
"""
TINY_LLM_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}<extra_id_0>System\n{{ message['content'] }}\n\n"
    "{% elif message['role'] == 'user' %}<extra_id_1>User\n{{ message['content'] }}\n"
    "{% else %}<extra_id_1>Assistant\n{{ message['content'] }}\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<extra_id_1>Assistant\n{% endif %}"
)


def build_llm(
    target: Path,
    *,
    seed: int = 0,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    n_head_kv: int = 2,
    n_ff: int = 128,
    context_length: int = 4096,
) -> None:
    """A ~0.5 MB llama-architecture GGUF (F32, random weights) that llama.cpp loads like real ones.

    Vocabulary: SentencePiece-style with `<unk> <s> </s>`, two chat-role control tokens, the
    256 byte-fallback tokens and printable ASCII, so any text tokenizes (mostly one token per
    character) and grammar-constrained sampling can spell any JSON.
    """
    import gguf
    import numpy as np

    rng = np.random.default_rng(seed)
    tokens = ["<unk>", "<s>", "</s>", "<extra_id_0>", "<extra_id_1>"]
    types = [gguf.TokenType.UNKNOWN] + [gguf.TokenType.CONTROL] * 4
    tokens += [f"<0x{byte:02X}>" for byte in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    tokens += [chr(code) for code in range(33, 127)] + ["\u2581"]  # U+2581: SentencePiece space
    types += [gguf.TokenType.NORMAL] * 95
    scores = [0.0] * len(tokens)
    # Whole words as SentencePiece pieces (with every prefix, so merges can reach them): English
    # text then costs ~4 characters a token, as with real tokenizers, not one.
    for word in sorted(set(_TINY_LLM_WORDS.split())):
        piece = "\u2581" + word
        for end in range(2, len(piece) + 1):
            if piece[:end] not in tokens:
                tokens.append(piece[:end])
                types.append(gguf.TokenType.NORMAL)
                scores.append(float(end))
    target.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(target), "llama")
    writer.add_name("hsi-tiny-llm")
    writer.add_context_length(context_length)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types([int(t) for t in types])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(TINY_LLM_CHAT_TEMPLATE)

    def weight(name: str, *shape: int) -> None:  # numpy shape = ggml shape reversed
        writer.add_tensor(name, (rng.standard_normal(shape) * 0.02).astype(np.float32))

    def norm(name: str) -> None:
        writer.add_tensor(name, np.ones(n_embd, dtype=np.float32))

    kv_dim = n_head_kv * (n_embd // n_head)
    weight("token_embd.weight", len(tokens), n_embd)
    norm("output_norm.weight")
    weight("output.weight", len(tokens), n_embd)
    for i in range(n_layer):
        norm(f"blk.{i}.attn_norm.weight")
        weight(f"blk.{i}.attn_q.weight", n_embd, n_embd)
        weight(f"blk.{i}.attn_k.weight", kv_dim, n_embd)
        weight(f"blk.{i}.attn_v.weight", kv_dim, n_embd)
        weight(f"blk.{i}.attn_output.weight", n_embd, n_embd)
        norm(f"blk.{i}.ffn_norm.weight")
        weight(f"blk.{i}.ffn_gate.weight", n_ff, n_embd)
        weight(f"blk.{i}.ffn_up.weight", n_ff, n_embd)
        weight(f"blk.{i}.ffn_down.weight", n_embd, n_ff)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


# --- a random-weight GGUF of the default LLM's architecture and quantisation (benchmarks) ---

# Bump when the recipe changes: cached files carry it in their name.
NEMOTRON_GGUF_VERSION = 2
# Nemotron-Mini-4B-Instruct's config.json (NemotronForCausalLM): hidden 3072, 32 layers, 24 query
# heads of 128 (the model card's "32 heads" is not what the checkpoint holds), 8 KV heads, MLP
# 9216 (squared ReLU, no gate), vocabulary 256000, partial rotary factor 0.5, LayerNorm with bias,
# eps 1e-5, context 4096, untied output matrix.
NEMOTRON_MINI_4B: dict[str, int] = {
    "n_embd": 3072,
    "n_layer": 32,
    "n_head": 24,
    "n_head_kv": 8,
    "n_ff": 9216,
    "vocab_size": 256000,
    "context_length": 4096,
}


def _nemotron_vocab(vocab_size: int) -> tuple[list[str], list[float], list[int]]:
    """A SentencePiece vocabulary of `vocab_size` pieces that splits English like a real one.

    Words come from open_clip's BPE vocabulary (learnt on English web text, shipped with the
    package, so no download), most frequent first, as `▁word` and `▁Word` with every prefix
    (so llama.cpp's SPM merges can reach the whole word) and as bare continuation pieces; 256
    byte-fallback tokens cover anything else. Filler pieces that English never produces pad the
    rest, so the embedding and output matrices have the real size.
    """
    import gzip

    import gguf
    import open_clip

    specials = ["<pad>", "<unk>", "<s>", "</s>", "<extra_id_0>", "<extra_id_1>"]
    tokens = list(specials)
    types = [gguf.TokenType.CONTROL, gguf.TokenType.UNKNOWN] + [gguf.TokenType.CONTROL] * 4
    tokens += [f"<0x{byte:02X}>" for byte in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    scores = [0.0] * len(tokens)
    seen = set(tokens)

    def add(piece: str) -> None:
        if piece not in seen and len(tokens) < vocab_size:
            seen.add(piece)
            tokens.append(piece)
            types.append(gguf.TokenType.NORMAL)
            scores.append(float(len(piece)))  # longer merges win, as frequent words do

    for code in [*range(32, 127), 0x2581, 0x0A]:
        add(chr(code))
    bpe = Path(open_clip.__file__).with_name("bpe_simple_vocab_16e6.txt.gz")
    with gzip.open(bpe, "rt", encoding="utf-8") as file:
        merges = file.read().split("\n")[1:]
    for line in merges:
        joined = line.replace(" ", "")
        if not joined.endswith("</w>"):
            continue
        word = joined[: -len("</w>")]
        if not word.isascii() or not word.isprintable():
            continue
        for piece in ("\u2581" + word, word, "\u2581" + word.capitalize()):
            for end in range(2, len(piece) + 1):
                add(piece[:end])
        if len(tokens) >= vocab_size:
            break
    filler = 0
    while len(tokens) < vocab_size:
        tokens.append(f"\u2581\u00a7{filler:x}")  # "§" + hex: never in an English prompt
        types.append(gguf.TokenType.NORMAL)
        scores.append(-1e9)
        filler += 1
    return tokens, scores, [int(t) for t in types]


def build_nemotron_gguf(
    target: Path,
    *,
    n_embd: int = NEMOTRON_MINI_4B["n_embd"],
    n_layer: int = NEMOTRON_MINI_4B["n_layer"],
    n_head: int = NEMOTRON_MINI_4B["n_head"],
    n_head_kv: int = NEMOTRON_MINI_4B["n_head_kv"],
    n_ff: int = NEMOTRON_MINI_4B["n_ff"],
    vocab_size: int = NEMOTRON_MINI_4B["vocab_size"],
    context_length: int = NEMOTRON_MINI_4B["context_length"],
    quantization: str = "Q4_K_M",
    threads: int | None = None,
    seed: int = 0,
) -> None:
    """Write a random-weight `nemotron` GGUF (llama.cpp's LLM_ARCH_NEMOTRON) to `target`.

    The defaults are Nemotron-Mini-4B-Instruct's shapes; smaller ones scale it down for tests.
    The weights are written as F16 one tensor at a time (the full model is 8.4 GB in F16: it
    never sits in memory), then quantised by llama.cpp's own quantiser (llama-cpp-python's
    `llama_model_quantize`) to `quantization` (a `LLAMA_FTYPE_MOSTLY_*` name, or F16 to keep
    the unquantised file), so the file has the same tensor types as the published Q4_K_M.
    """
    import gguf
    import llama_cpp
    import numpy as np

    if n_embd % n_head or n_head % n_head_kv:
        raise ValueError("n_embd must divide into n_head heads, n_head into n_head_kv groups")
    ftype = None
    if quantization != "F16":
        ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{quantization}", None)
        if ftype is None:
            raise ValueError(f"unknown llama.cpp quantisation {quantization!r}")
    head_dim = n_embd // n_head
    tokens, scores, types = _nemotron_vocab(vocab_size)
    target.parent.mkdir(parents=True, exist_ok=True)
    f16_path = target if ftype is None else target.with_name(target.name + ".f16.tmp")
    writer = gguf.GGUFWriter(str(f16_path), "nemotron")
    writer.add_name("hsi-random-nemotron")
    writer.add_context_length(context_length)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_rope_freq_base(10000.0)
    # Partial rotary (factor 0.5): only half of each head is rotated, as convert_hf_to_gguf.py
    # writes int(0.5 * n_embd) // n_head.
    writer.add_rope_dimension_count(head_dim // 2)
    writer.add_layer_norm_eps(1e-5)
    writer.add_vocab_size(vocab_size)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_pad_token_id(0)
    writer.add_unk_token_id(1)
    writer.add_bos_token_id(2)
    writer.add_eos_token_id(3)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(TINY_LLM_CHAT_TEMPLATE)

    # name -> numpy shape (ggml's order reversed); 1-D are LayerNorm weight (ones) / bias (zeros).
    kv_dim = n_head_kv * head_dim
    shapes: dict[str, tuple[int, ...]] = {"token_embd.weight": (vocab_size, n_embd)}
    for i in range(n_layer):
        blk = f"blk.{i}"
        shapes |= {
            f"{blk}.attn_norm.weight": (n_embd,),
            f"{blk}.attn_norm.bias": (n_embd,),
            f"{blk}.attn_q.weight": (n_head * head_dim, n_embd),
            f"{blk}.attn_k.weight": (kv_dim, n_embd),
            f"{blk}.attn_v.weight": (kv_dim, n_embd),
            f"{blk}.attn_output.weight": (n_embd, n_head * head_dim),
            f"{blk}.ffn_norm.weight": (n_embd,),
            f"{blk}.ffn_norm.bias": (n_embd,),
            f"{blk}.ffn_up.weight": (n_ff, n_embd),
            f"{blk}.ffn_down.weight": (n_embd, n_ff),
        }
    shapes |= {
        "output_norm.weight": (n_embd,),
        "output_norm.bias": (n_embd,),
        "output.weight": (vocab_size, n_embd),
    }
    for name, shape in shapes.items():
        dtype = np.dtype(np.float32 if len(shape) == 1 else np.float16)
        writer.add_tensor_info(name, shape, dtype, int(np.prod(shape)) * dtype.itemsize)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    rng = np.random.default_rng(seed)
    for name, shape in shapes.items():
        if len(shape) == 1:
            fill = 1.0 if name.endswith(".weight") else 0.0
            writer.write_tensor_data(np.full(shape, fill, dtype=np.float32))
            continue
        data = np.empty(shape, dtype=np.float16)
        step = max(1, (1 << 24) // shape[1])  # ~64 MB of float32 at a time
        for row in range(0, shape[0], step):
            chunk = rng.standard_normal((min(step, shape[0] - row), shape[1]), dtype=np.float32)
            data[row : row + step] = chunk * 0.02
        writer.write_tensor_data(data)
        del data
    writer.close()
    if ftype is None:
        return
    try:
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = ftype
        params.nthread = threads or 0  # 0: llama.cpp uses every core
        status = llama_cpp.llama_model_quantize(
            str(f16_path).encode(), str(target).encode(), ctypes.byref(params)
        )
        if status != 0:
            raise RuntimeError(f"llama_model_quantize failed ({status}) for {target}")
    finally:
        f16_path.unlink(missing_ok=True)


def nemotron_gguf(cache_dir: Path, *, threads: int | None = None, **params: Any) -> Path:
    """The cached random-weight nemotron GGUF for `params` (see `build_nemotron_gguf`), built
    on first use. The file name carries a hash of the parameters and the recipe version; the
    file is written under a temporary name and renamed, so a crash never leaves a half file."""
    import hashlib

    # Defaults resolved first, so naming a default explicitly finds the same file.
    resolved = {**NEMOTRON_MINI_4B, "quantization": "Q4_K_M", "seed": 0, **params}
    key = json.dumps({"version": NEMOTRON_GGUF_VERSION, **resolved}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    quant = str(resolved["quantization"]).lower()
    target = cache_dir / f"random-nemotron-{digest}-{quant}.gguf"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    scratch = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        _LOGGER.info("building random-weight nemotron GGUF %s (%s)", target, key)
        build_nemotron_gguf(scratch, threads=threads, **params)
        scratch.rename(target)
    finally:
        scratch.unlink(missing_ok=True)
    return target


# Model name -> builder; each model is built in a folder of its name.
BUILDERS: dict[str, Callable[[Path], None]] = {
    Detector.name: build_detector,
    LLMBackend.name: lambda target: build_llm(target / TINY_LLM_FILE),
    Florence.name: build_florence,
    Clip.name: build_clip,
}


def make_tiny_models(root: Path, names: list[str] | None = None) -> dict[str, Path]:
    """Build (or reuse) the tiny models under `root`; returns name -> path."""
    return {
        name: build_once(root / name, BUILDERS[name], f"tiny {name} model")
        for name in names or list(BUILDERS)
    }


def build_once(target: Path, build: Callable[[Path], object], what: str) -> Path:
    """`target`, unless it holds a build of this TINY_VERSION's recipes: then built by `build` in
    a scratch folder beside it and renamed into place, so a crash midway never leaves a
    half-written model that a later run would trust."""
    if stamp_ok(target):
        return target
    _LOGGER.info("building %s in %s", what, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build(scratch)
        write_stamp(scratch)
        if target.exists():
            shutil.rmtree(target)
        scratch.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def write_stamp(folder: Path) -> None:
    """Mark a finished build as made by this TINY_VERSION's recipes."""
    (folder / STAMP).write_text(json.dumps({"version": TINY_VERSION}))


def stamp_ok(folder: Path) -> bool:
    """Whether `folder` holds a finished build of this TINY_VERSION's recipes."""
    try:
        return bool(json.loads((folder / STAMP).read_text()).get("version") == TINY_VERSION)
    except (OSError, ValueError):
        return False
