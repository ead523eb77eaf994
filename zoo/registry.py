"""Model cards by name: family, architecture, preprocessing, dataset and where the weights come from.

Published models are declared here; models shipped in `zoo/weights/<name>/` (the embedded default and the
defended variants trained by `python -m zoo.train`) register themselves from their `card.json`.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from .models._common import BEIT_MEAN, BEIT_STD, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from .registries import Registry

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class CheckpointSource:
    """One file that holds a model's weights; `url` is None when it is only published through a web page.

    A Hugging Face Hub source names a transformers repository (`hub`, "ORG/NAME") of the same weights: `revision`
    pins its commit hash (None: unpinned, the repository's `main`); its weights file is chosen when loading
    (safetensors, else pytorch_model.bin), so a registry card's Hub source has the repository id as `filename`,
    and the weights are renamed to the official layout (zoo.hf) on loading.
    """

    filename: str
    url: Optional[str] = None
    sha256: Optional[str] = None
    page: Optional[str] = None           # where to get it by hand when there is no direct URL
    note: str = ""
    arch_overrides: tuple[tuple[str, Any], ...] = ()   # e.g. norm_pix_loss=True for *_full files
    hub: Optional[str] = None            # "ORG/NAME" on the Hugging Face Hub
    revision: Optional[str] = None       # the Hub commit hash the source is pinned to; None = "main", unpinned

    @property
    def hub_ref(self) -> str:
        """`hf-hub:ORG/NAME[@REVISION]`, the form `--model` and `--classifier` take."""
        return f"hf-hub:{self.hub}" + (f"@{self.revision}" if self.revision else "")


@dataclass
class ModelCard:
    name: str
    family: str                           # 'mae' | 'simmim' | 'beit'
    arch: dict[str, Any]
    dataset: str
    preprocessing: dict[str, Any]
    mim_sources: list[CheckpointSource] = field(default_factory=list)
    classifier_arch: Optional[dict[str, Any]] = None
    classifier_family: str = "vit_classifier"
    classifier_sources: list[CheckpointSource] = field(default_factory=list)
    expected_top1: Optional[float] = None  # the paper's clean top-1 (fraction), to warn on a wrong file
    description: str = ""
    paper: str = ""
    defenses: list[str] = field(default_factory=list)
    local_dir: Optional[str] = None        # shipped or trainer-written folder holding card.json and weights

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def entry_dict(self) -> dict[str, Any]:
        """The card as a leaderboard entry records it: `local_dir` made portable (`portable_dir`), so a committed
        entry names no machine's or worktree's absolute path."""
        card = self.to_dict()
        if self.local_dir is not None:
            card["local_dir"] = portable_dir(self.local_dir)
        return card


def portable_dir(folder: str) -> str:
    """`zoo/weights/<name>` for a folder of the shipped zoo (in whichever clone or worktree), else the folder's
    name alone: where the weights were is not the entry's business, only that a trainer folder held them."""
    path = Path(folder)
    if path.parent.name == WEIGHTS_DIR.name and path.parent.parent.name == WEIGHTS_DIR.parent.name:
        return f"{WEIGHTS_DIR.parent.name}/{WEIGHTS_DIR.name}/{path.name}"
    return path.name


MODELS: Registry[ModelCard] = Registry("model")


def register(card: ModelCard, replace: bool = False) -> ModelCard:
    """Add a model card to the zoo (a taken name only with `replace`)."""
    return MODELS.register(card.name, card, replace=replace)


def with_stats(arch: dict[str, Any], preprocessing: dict[str, Any]) -> dict[str, Any]:
    """`arch` plus the preprocessing's normalisation (mean, std) where `arch` sets none: models normalise inside."""
    arch = dict(arch)
    for key in ("mean", "std"):
        if key not in arch and key in preprocessing:
            arch[key] = preprocessing[key]
    return arch


def hub_source(repo: str, revision: Optional[str], note: str) -> CheckpointSource:
    """A Hugging Face Hub repository of the same weights as a card's file (see `CheckpointSource`)."""
    return CheckpointSource(repo, None, page=f"https://huggingface.co/{repo}", note=note, hub=repo, revision=revision)


def _imagenet_preprocessing(mean, std, crop_pct: float = 0.875, interpolation: str = "bicubic") -> dict[str, Any]:
    return {"resize": int(round(224 / crop_pct)), "crop": 224, "interpolation": interpolation,
            "mean": list(mean), "std": list(std)}


# -- MAE (He et al., CVPR 2022), facebookresearch/mae --------------------------------------------------------
# The Hub's facebook/vit-mae-* are transformers' conversions (convert_vit_mae_to_pytorch.py) of the visualisation
# checkpoints: the script's default URL is mae_visualize_vit_base.pth and its config keeps ViTMAEConfig's
# norm_pix_loss=False. For large and huge it only reads "large"/"huge" from the URL it is given, so which file was
# converted is inferred from the same config, not recorded. Revisions: the commit hashes of Hub snapshot folders
# (models--facebook--vit-mae-*/snapshots/<commit>) found in public code; none was found for huge.
_MAE_SIZES = {
    "b": dict(tag="base", patch_size=16, embed_dim=768, depth=12, num_heads=12, top1=0.836,
              hub_revision="25b184bea5538bf5c4c852c79d221195fdd2778d"),
    "l": dict(tag="large", patch_size=16, embed_dim=1024, depth=24, num_heads=16, top1=0.859,
              hub_revision="142cb8c25e1b1bc1769997a919aa1b5a2345a6b8"),
    "h": dict(tag="huge", patch_size=14, embed_dim=1280, depth=32, num_heads=16, top1=0.869, hub_revision=None),
}
for _key, _s in _MAE_SIZES.items():
    _enc = dict(img_size=224, patch_size=_s["patch_size"], in_chans=3, embed_dim=_s["embed_dim"], depth=_s["depth"],
                num_heads=_s["num_heads"], mlp_ratio=4.0)
    register(ModelCard(
        name=f"mae_vit_{_key}", family="mae", dataset="imagenet",
        arch=dict(_enc, decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16, norm_pix_loss=False,
                  mask_ratio=0.75),
        preprocessing=_imagenet_preprocessing(IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD),
        mim_sources=[
            CheckpointSource(f"mae_visualize_vit_{_s['tag']}.pth",
                             f"https://dl.fbaipublicfiles.com/mae/visualize/mae_visualize_vit_{_s['tag']}.pth",
                             note="encoder + decoder, trained without norm_pix_loss (the visualisation model)"),
            CheckpointSource(f"mae_pretrain_vit_{_s['tag']}_full.pth",
                             f"https://dl.fbaipublicfiles.com/mae/pretrain/mae_pretrain_vit_{_s['tag']}_full.pth",
                             note="encoder + decoder, trained with norm_pix_loss",
                             arch_overrides=(("norm_pix_loss", True),)),
            hub_source(f"facebook/vit-mae-{_s['tag']}", _s["hub_revision"],
                       f"ViTMAEForPreTraining: mae_visualize_vit_{_s['tag']}.pth converted by transformers "
                       f"(norm_pix_loss false)" + ("" if _key == "b" else ", inferred from its config")),
        ],
        classifier_arch=dict(_enc, num_classes=1000, global_pool=True, qkv_bias=True),
        classifier_sources=[CheckpointSource(
            f"mae_finetuned_vit_{_s['tag']}.pth",
            f"https://dl.fbaipublicfiles.com/mae/finetune/mae_finetuned_vit_{_s['tag']}.pth")],
        expected_top1=_s["top1"], paper="He et al., Masked Autoencoders Are Scalable Vision Learners, CVPR 2022",
        description=f"MAE ViT-{_key.upper()}/{_s['patch_size']}, ImageNet-1k, official checkpoints",
    ))


# -- SimMIM (Xie et al., CVPR 2022), microsoft/SimMIM: files only through the README's Google Drive links -------
# (no official release on the Hugging Face Hub)
_SIMMIM_PAGE = "https://github.com/microsoft/SimMIM#vision-transformer (Google Drive link in the README table)"
_BEIT_STYLE_VIT_B = dict(img_size=224, patch_size=16, in_chans=3, embed_dim=768, depth=12, num_heads=12,
                         mlp_ratio=4.0, qkv_bias=True, init_values=0.1, use_abs_pos_emb=False)
register(ModelCard(
    name="simmim_vit_b", family="simmim", dataset="imagenet",
    arch=dict(_BEIT_STYLE_VIT_B, use_rel_pos_bias=False, use_shared_rel_pos_bias=True, encoder_stride=16,
              mask_patch_size=32, mask_ratio=0.6),
    preprocessing=_imagenet_preprocessing(IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD),
    mim_sources=[CheckpointSource("simmim_pretrain__vit_base__img224__800ep.pth", None, page=_SIMMIM_PAGE,
                                  note="encoder + linear pixel decoder, 800 epochs on ImageNet-1k")],
    classifier_family="beit_classifier",
    classifier_arch=dict(_BEIT_STYLE_VIT_B, num_classes=1000, use_rel_pos_bias=True, use_shared_rel_pos_bias=False,
                         use_mean_pooling=True),
    classifier_sources=[CheckpointSource("simmim_finetune__vit_base__img224__800ep.pth", None, page=_SIMMIM_PAGE)],
    expected_top1=0.838, paper="Xie et al., SimMIM: A Simple Framework for Masked Image Modeling, CVPR 2022",
    description="SimMIM ViT-B/16, ImageNet-1k, official checkpoints",
))

# -- BEiT (Bao et al., ICLR 2022), microsoft/unilm/beit: pre-trained on ImageNet-22k, DALL-E visual tokens ------
_BEIT_URL = "https://unilm.blob.core.windows.net/beit/"
# The Hub's microsoft/beit-{base,large}-patch16-224-pt22k (BeitForMaskedImageModeling) and microsoft/beit-{base,
# large}-patch16-224 (BeitForImageClassification) are transformers' conversions (convert_beit_unilm_to_pytorch.py)
# of beit_*_patch16_224_pt22k.pth and beit_*_patch16_224_pt22k_ft22kto1k.pth. No commit hash of theirs was found
# in public material: they are unpinned ("main") and --list-models says so.
_BEIT_SIZES = {
    "b": dict(tag="base", embed_dim=768, depth=12, num_heads=12, init_values=0.1, top1=0.852),
    "l": dict(tag="large", embed_dim=1024, depth=24, num_heads=16, init_values=1e-5, top1=0.874),
}
for _key, _s in _BEIT_SIZES.items():
    _vit = dict(img_size=224, patch_size=16, in_chans=3, embed_dim=_s["embed_dim"], depth=_s["depth"],
                num_heads=_s["num_heads"], mlp_ratio=4.0, qkv_bias=True, init_values=_s["init_values"],
                use_abs_pos_emb=False)
    _pt, _ft = f"beit_{_s['tag']}_patch16_224_pt22k.pth", f"beit_{_s['tag']}_patch16_224_pt22k_ft22kto1k.pth"
    register(ModelCard(
        name=f"beit_{_key}", family="beit", dataset="imagenet",
        arch=dict(_vit, use_rel_pos_bias=False, use_shared_rel_pos_bias=True, vocab_size=8192, num_mask_patches=75,
                  min_mask_patches_per_block=16),
        preprocessing=_imagenet_preprocessing(BEIT_MEAN, BEIT_STD),
        mim_sources=[CheckpointSource(_pt, _BEIT_URL + _pt, note="self-supervised on ImageNet-22k, with lm_head"),
                     hub_source(f"microsoft/beit-{_s['tag']}-patch16-224-pt22k", None,
                                f"BeitForMaskedImageModeling: {_pt} converted by transformers")],
        classifier_family="beit_classifier",
        classifier_arch=dict(_vit, num_classes=1000, use_rel_pos_bias=True, use_shared_rel_pos_bias=False,
                             use_mean_pooling=True),
        classifier_sources=[CheckpointSource(_ft, _BEIT_URL + _ft, note="fine-tuned on ImageNet-22k, then 1k"),
                            hub_source(f"microsoft/beit-{_s['tag']}-patch16-224", None,
                                       f"BeitForImageClassification: {_ft} converted by transformers")],
        expected_top1=_s["top1"], paper="Bao et al., BEiT: BERT Pre-Training of Image Transformers, ICLR 2022",
        description=f"BEiT-{_key.upper()}/16, pre-trained on ImageNet-22k, official checkpoints",
    ))

# The head each family's MIM model needs, which an encoder-only or fine-tuned file lacks.
_MIM_HEAD_PREFIXES = {"mae": ("decoder_", "mask_token"), "simmim": ("decoder.",), "beit": ("lm_head.",)}
_MIM_HEAD_NAMES = {"mae": "decoder", "simmim": "pixel decoder", "beit": "visual-token head (lm_head)"}


def _encoder_only_hint(card: ModelCard):
    """Message for a file without the MIM head (e.g. mae_pretrain_vit_base.pth) given for reconstruction."""
    prefixes = _MIM_HEAD_PREFIXES.get(card.family, ())

    def hint(missing: set, foreign: set) -> Optional[str]:
        if any(k.startswith(prefixes) for k in missing):
            files = ", ".join(s.filename for s in card.mim_sources) or "the pre-training checkpoint"
            return (f"The {_MIM_HEAD_NAMES.get(card.family, 'MIM head')} is missing: this looks like an encoder-only "
                    f"or fine-tuned file; masked image modelling needs the full pre-training file ({files})")
        return None
    return hint


def _classifier_hint(card: ModelCard):
    """Message for a pre-training file given where the fine-tuned classifier is expected."""
    def hint(missing: set, foreign: set) -> Optional[str]:
        if any(k.startswith("head.") for k in missing):
            files = ", ".join(s.filename for s in card.classifier_sources) or "a fine-tuned checkpoint"
            return f"The classification head is missing: this looks like a pre-training file; the classifier needs {files}"
        return None
    return hint


def _card_from_local(folder: Path) -> ModelCard:
    meta = json.loads((folder / "card.json").read_text())
    files = meta.get("files", {})

    def _src(role: str) -> list[CheckpointSource]:
        f = files.get(role)
        return [CheckpointSource(f["file"], None, f.get("sha256"))] if f else []
    return ModelCard(
        name=meta["name"], family=meta["family"], arch=meta["arch"], dataset=meta["dataset"],
        preprocessing=meta.get("preprocessing", {}), mim_sources=_src("mim"),
        classifier_arch=meta.get("classifier_arch"), classifier_sources=_src("classifier"),
        classifier_family=meta.get("classifier_family", "vit_classifier"), description=meta.get("description", ""),
        defenses=list(meta.get("defenses", [])), local_dir=str(folder),
    )


CARD_KEYS = ("name", "family", "arch", "dataset")


def card_from_folder(folder: Path) -> ModelCard:
    """The card of a trainer-written folder (card.json + safetensors); ValueError in one line naming what is wrong
    with its card.json."""
    path = Path(folder) / "card.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: unreadable ({type(exc).__name__})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: expected a JSON object")
    missing = [k for k in CARD_KEYS if k not in meta]
    if missing:
        raise ValueError(f"{path}: the card lacks {', '.join(missing)} (a trainer folder's card has "
                         f"{', '.join(CARD_KEYS)}, files, ...)")
    files = meta.get("files", {})
    bad = [role for role, f in files.items() if not isinstance(f, dict) or "file" not in f]
    if bad:
        raise ValueError(f"{path}: files.{bad[0]} must name its 'file'")
    return _card_from_local(Path(folder))


def _register_shipped() -> None:
    if not WEIGHTS_DIR.is_dir():
        return
    for card_file in sorted(WEIGHTS_DIR.glob("*/card.json")):
        try:
            register(_card_from_local(card_file.parent))
        except (KeyError, ValueError, json.JSONDecodeError):
            continue  # a half-written folder must not break the registry


_register_shipped()


def list_models(filter: Optional[str] = None) -> list[str]:
    """The zoo's model names, sorted; `filter` a shell-style pattern such as 'mae_*'."""
    return MODELS.list(filter, sort=True)


def shipped_models() -> list[str]:
    """The models whose weights ship in zoo/weights/ (the embedded default and the defended zoo), sorted."""
    registered = set(MODELS.list())
    return sorted(p.parent.name for p in WEIGHTS_DIR.glob("*/card.json") if p.parent.name in registered)


def get_card(name: str) -> ModelCard:
    """The named card (UnknownNameError, a KeyError, naming the known models)."""
    return MODELS.get(name)


def encoder_only_hint(card: ModelCard):
    return _encoder_only_hint(card)


def classifier_hint(card: ModelCard):
    return _classifier_hint(card)
