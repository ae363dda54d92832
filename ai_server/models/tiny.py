"""The `tiny` profile: random-weight models of the real architectures, built locally.

Weights cannot always be downloaded (tests, CI, offline smoke runs), so this module writes small
models in the same on-disk formats as the real checkpoints; the server then loads them through
exactly the same code path (`from_pretrained` on a folder). Their outputs are meaningless but
have the real shapes and types.
"""

from __future__ import annotations

import json
import logging
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

# Bump when a recipe changes, so cached builds are rebuilt.
TINY_VERSION = 1

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


def build_detector(target: Path, *, image_size: int = 640, seed: int = 0) -> None:
    """A ~2 MB RT-DETRv2 (ResNet backbone, 2 decoder layers, COCO labels) with random weights."""
    from transformers import (
        RTDetrImageProcessor,
        RTDetrResNetConfig,
        RTDetrV2Config,
        RTDetrV2ForObjectDetection,
    )

    torch.manual_seed(seed)
    backbone = RTDetrResNetConfig(
        embedding_size=16,
        hidden_sizes=[16, 32, 64, 128],
        depths=[1, 1, 1, 1],
        layer_type="basic",
        out_features=["stage2", "stage3", "stage4"],  # type: ignore[call-arg]
    )
    config = RTDetrV2Config(
        backbone_config=backbone,
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
        id2label=COCO_ID2LABEL,
        label2id={v: k for k, v in COCO_ID2LABEL.items()},
    )
    model = RTDetrV2ForObjectDetection(config).eval()
    model.save_pretrained(target)
    RTDetrImageProcessor(size={"height": image_size, "width": image_size}).save_pretrained(target)


def build_detector_r18vd(target: Path, *, seed: int = 0) -> None:
    """RT-DETRv2 r18vd (PekingU/rtdetr_v2_r18vd's architecture, the CPU default) with random
    weights (benchmarks only)."""
    from transformers import (
        RTDetrImageProcessor,
        RTDetrResNetConfig,
        RTDetrV2Config,
        RTDetrV2ForObjectDetection,
    )

    torch.manual_seed(seed)
    backbone = RTDetrResNetConfig(
        embedding_size=64,
        hidden_sizes=[64, 128, 256, 512],
        depths=[2, 2, 2, 2],
        layer_type="basic",
        downsample_in_bottleneck=False,
        out_features=["stage2", "stage3", "stage4"],  # type: ignore[call-arg]
    )
    config = RTDetrV2Config(
        backbone_config=backbone,
        encoder_in_channels=[128, 256, 512],
        hidden_expansion=0.5,
        decoder_layers=3,
        id2label=COCO_ID2LABEL,
        label2id={v: k for k, v in COCO_ID2LABEL.items()},
    )
    RTDetrV2ForObjectDetection(config).eval().save_pretrained(target)
    RTDetrImageProcessor(size={"height": 640, "width": 640}).save_pretrained(target)


def build_detector_r50vd(target: Path, *, seed: int = 0) -> None:
    """The real-size RT-DETRv2 r50vd architecture with random weights (benchmarks only)."""
    from transformers import RTDetrImageProcessor, RTDetrV2Config, RTDetrV2ForObjectDetection

    torch.manual_seed(seed)
    config = RTDetrV2Config(
        id2label=COCO_ID2LABEL, label2id={v: k for k, v in COCO_ID2LABEL.items()}
    )
    RTDetrV2ForObjectDetection(config).eval().save_pretrained(target)
    RTDetrImageProcessor(size={"height": 640, "width": 640}).save_pretrained(target)


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


# Model name -> builder; each model is built in a folder of its name.
BUILDERS: dict[str, Callable[[Path], None]] = {
    Detector.name: build_detector,
    LLMBackend.name: lambda target: build_llm(target / TINY_LLM_FILE),
    Florence.name: build_florence,
    Clip.name: build_clip,
}


def make_tiny_models(root: Path, names: list[str] | None = None) -> dict[str, Path]:
    """Build (or reuse) the tiny models under `root`; returns name -> path.

    Each model is written to a temporary folder and renamed into place, so a crash midway
    never leaves a half-written model that a later run would trust.
    """
    root.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name in names or list(BUILDERS):
        builder = BUILDERS[name]
        target = root / name
        stamp = target / ".hsi-tiny.json"
        if _stamp_ok(stamp):
            paths[name] = target
            continue
        _LOGGER.info("building tiny %s model in %s", name, target)
        scratch = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
        try:
            builder(scratch)
            (scratch / stamp.name).write_text(json.dumps({"version": TINY_VERSION}))
            if target.exists():
                shutil.rmtree(target)
            scratch.rename(target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        paths[name] = target
    return paths


def _stamp_ok(stamp: Path) -> bool:
    try:
        return bool(json.loads(stamp.read_text()).get("version") == TINY_VERSION)
    except (OSError, ValueError):
        return False
