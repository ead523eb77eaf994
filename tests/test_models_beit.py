"""BEiT and the BEiT-style classifier reproduce the authors' code (../shared/fixtures/official/beit*)."""
from __future__ import annotations

import pytest
import torch

import zoo
from zoo import masking

from .helpers import official_arch

TOL = 1e-5

pytestmark = pytest.mark.usefixtures("one_thread")


def _load(official_dir):
    family, arch = official_arch("beit")
    model = zoo.build(family, **arch, mean=0.0, std=1.0).eval()
    zoo.load_checkpoint(model, official_dir / "beit.pth")
    return model, torch.load(official_dir / "beit.io.pt", weights_only=True)


def test_beit_matches_official(official_dir):
    model, io = _load(official_dir)
    mask = io["bool_masked_pos"]
    with torch.no_grad():
        out = model.forward_mim(io["x"], mask)
    torch.testing.assert_close(out.pred, io["logits_all_tokens"], atol=TOL, rtol=0)
    torch.testing.assert_close(out.pred[mask], io["logits_masked"], atol=TOL, rtol=0)
    assert out.loss is None and out.reconstruction is None and out.latent.shape == (3, 65, 64)


def test_beit_loss_is_cross_entropy_on_masked_tokens(official_dir):
    model, io = _load(official_dir)
    mask = io["bool_masked_pos"]
    tokens = torch.randint(0, 50, mask.shape, generator=torch.Generator().manual_seed(0))
    expected = torch.nn.functional.cross_entropy(io["logits_masked"], tokens[mask])  # unilm: CE(lm_head(x[mask]), labels)
    with torch.no_grad():
        out = model.forward_mim(io["x"], mask, target=tokens)
        per = model.forward_mim(io["x"], mask, target=tokens, reduction="none").loss
        model.set_tokenizer(lambda img: tokens)  # a user-supplied tokenizer (e.g. DALL-E's d-VAE)
        via_tokenizer = model.forward_mim(io["x"], mask).loss
    torch.testing.assert_close(out.loss, expected, atol=TOL, rtol=0)
    torch.testing.assert_close(via_tokenizer, expected, atol=TOL, rtol=0)
    n = mask.sum(1).float()
    torch.testing.assert_close((per * n).sum() / n.sum(), expected, atol=TOL, rtol=0)
    assert not any("tokenizer" in k for k in model.state_dict())
    model.set_tokenizer(None)
    with pytest.raises(ValueError, match="visual tokens"):
        model.forward_mim(io["x"], mask, target=io["x"])


def test_beit_blockwise_mask_is_seeded_and_blocky(official_dir):
    model, _ = _load(official_dir)
    assert model.num_mask_patches == round(75 * 64 / 196)
    m = model.make_mask(range(200), seed=0)
    assert m.shape == (200, 64) and torch.equal(model.make_mask([5, 9]), m[[5, 9]])
    assert not torch.equal(m, model.make_mask(range(200), seed=1))
    counts = m.sum(1)
    assert (counts <= model.num_mask_patches).all() and counts.float().mean() > 0.9 * model.num_mask_patches
    # blockwise: masked patches have masked neighbours far more often than random masks of the same count
    g = m.view(200, 8, 8).float()
    neighbours = (g[:, 1:, :] * g[:, :-1, :]).sum() + (g[:, :, 1:] * g[:, :, :-1]).sum()
    r = masking.random_mask(range(200), 64, model.num_mask_patches / 64, seed=0).view(200, 8, 8).float()
    random_neighbours = (r[:, 1:, :] * r[:, :-1, :]).sum() + (r[:, :, 1:] * r[:, :, :-1]).sum()
    assert neighbours > 1.3 * random_neighbours


def test_unilm_block_rule_on_the_beit_b_grid():
    m = masking.blockwise_mask(range(50), (14, 14), 75, 16, None, seed=3)
    assert ((m.sum(1) >= 60) & (m.sum(1) <= 75)).all()


def _beit_classifier(**extra):
    arch = dict(img_size=32, patch_size=4, in_chans=3, num_classes=7, embed_dim=32, depth=2, num_heads=2,
                init_values=0.1, use_rel_pos_bias=True, use_shared_rel_pos_bias=False, use_mean_pooling=True, **extra)
    torch.manual_seed(0)
    return zoo.build("beit_classifier", **arch).eval()


def test_beit_classifier_keys_and_pooling():
    model = _beit_classifier(mean=0.0, std=1.0)
    keys = set(model.state_dict())
    assert {"blocks.0.attn.relative_position_bias_table", "blocks.0.gamma_1", "blocks.0.attn.q_bias", "fc_norm.weight",
            "head.weight"} <= keys
    assert not any(k.startswith(("norm.", "rel_pos_bias", "pos_embed")) for k in keys)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        tokens = model.forward_features(x)
        expected = model.head(model.fc_norm(tokens[:, 1:].mean(1)))  # unilm: fc_norm(mean of patch tokens)
        torch.testing.assert_close(model(x), expected, atol=TOL, rtol=0)
    assert model(x).shape == (2, 7) and model.normalizer.mean.flatten().tolist() == [0.0, 0.0, 0.0]
    assert _beit_classifier().normalizer.mean.flatten().tolist() == [0.5, 0.5, 0.5]  # BEiT v1 default
