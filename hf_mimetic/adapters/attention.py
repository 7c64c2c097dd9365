"""Adapters for self-attention models: ViT (``nn.Linear`` q/k/v/o) and GPT-2 (``Conv1D`` c_attn/c_proj).

Both receive the same maths-layout factors from :func:`layer_factors` (row-vector convention, ``q = x W_Q``) and
differ only in how they store them: ``nn.Linear`` keeps ``Wᵀ`` (``y = x Wᵀ``), GPT-2's ``Conv1D`` keeps ``W``
(``y = x W``). :meth:`layer_products` reads the products back from the module weights, for inspection and tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn
from transformers.models.gpt2.modeling_gpt2 import GPT2Attention, GPT2MLP, GPT2Model, GPT2PreTrainedModel
from transformers.models.vit.modeling_vit import ViTAttention, ViTEmbeddings, ViTMLP, ViTPreTrainedModel

from ..config import MimeticConfig
from ..functional.attention import qk_factors, vo_factors
from ..functional.positions import sinusoidal_1d, sinusoidal_2d
from .base import Adapter, write, writable, zero_


@dataclass
class LayerFactors:
    """Maths-layout factors of one attention layer; ``None`` for a product left at the native init."""

    w_q: torch.Tensor | None  # (d, H·k), head h in columns h·k:(h+1)·k
    w_k: torch.Tensor | None  # (d, H·k)
    w_v: torch.Tensor | None  # (d, H·k)
    w_o: torch.Tensor | None  # (H·k, d)


def layer_factors(cfg: MimeticConfig, num_heads: int, hidden_size: int, head_dim: int, device: torch.device) -> LayerFactors:
    """QK factors (per head, eqs. 3.16–3.18) and VO factors (per layer, eqs. 3.13–3.15) for one layer."""
    w_q = w_k = w_v = w_o = None
    if cfg.qk:
        q, k = qk_factors(num_heads, hidden_size, head_dim, cfg.qk_alpha, cfg.qk_beta, noise=cfg.noise, svd=cfg.qk_svd, device=device)
        # (H, d, k) → (d, H·k) with head h in columns h·k:(h+1)·k, the layout of every fused projection.
        w_q = q.permute(1, 0, 2).reshape(hidden_size, num_heads * head_dim)
        w_k = k.permute(1, 0, 2).reshape(hidden_size, num_heads * head_dim)
    if cfg.vo:
        w_v, w_o = vo_factors(hidden_size, cfg.vo_alpha, cfg.vo_beta, sign=cfg.vo_sign, noise=cfg.noise, device=device)
    return LayerFactors(w_q, w_k, w_v, w_o)


def check_heads(hidden_size: int, num_heads: int, head_dim: int) -> None:
    if num_heads * head_dim != hidden_size:
        raise ValueError(
            f"mimetic init needs num_heads × head_dim == hidden_size (W_V W_O is a full-rank d×d product); got "
            f"{num_heads} × {head_dim} = {num_heads * head_dim} != {hidden_size}. Choose num_attention_heads dividing "
            f"hidden_size {hidden_size} with head_dim = hidden_size / num_heads."
        )


def add_mean(weight: torch.Tensor, mean: float) -> None:
    """First MLP layer with a nonzero mean (Trockman & Kolter 2026): native draw + ``mean``."""
    if mean != 0.0 and writable(weight):
        write(weight, weight.detach().float() + mean)


def freeze_if(param: nn.Parameter, freeze: bool) -> None:
    if freeze:
        param.requires_grad_(False)


class ViTAdapter(Adapter):
    """ViT in transformers ≥ 5.23: ``layers[i].attention.{q,k,v,o}_proj``, ``embeddings.position_embeddings``."""

    family = "vit"
    base_class = ViTPreTrainedModel

    @staticmethod
    def heads(config) -> tuple[int, int]:
        num_heads = config.num_attention_heads
        return num_heads, getattr(config, "head_dim", None) or config.hidden_size // num_heads

    def check_config(self, config) -> None:
        check_heads(config.hidden_size, *self.heads(config))

    def init_module(self, model: nn.Module, module: nn.Module, cfg: MimeticConfig) -> None:
        if isinstance(module, ViTAttention):
            if cfg.selects(self._layer_index(model, module)):
                self._init_attention(module, cfg)
        elif isinstance(module, ViTMLP):
            if cfg.selects(self._layer_index(model, module)):
                add_mean(module.fc1.weight, cfg.mlp_mean)
        elif isinstance(module, ViTEmbeddings) and cfg.position_embeddings:
            self._init_positions(module, cfg)

    def target_modules(self, model: nn.Module) -> Iterator[nn.Module]:
        base = model.base_model
        yield base.embeddings
        for layer in base.layers:
            yield layer.attention
            yield layer.mlp

    def _layer_index(self, model: nn.Module, module: nn.Module) -> int:
        for index, layer in enumerate(model.base_model.layers):
            if module is layer.attention or module is layer.mlp:
                return index
        raise RuntimeError(f"{type(module).__name__} is not in {type(model).__name__}.layers")

    def _init_attention(self, attn: ViTAttention, cfg: MimeticConfig) -> None:
        projections = (attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj)
        if not any(writable(p.weight) for p in projections):
            return
        num_heads, head_dim = attn.num_attention_heads, attn.head_dim
        f = layer_factors(cfg, num_heads, attn.q_proj.in_features, head_dim, attn.q_proj.weight.device)
        # nn.Linear stores Wᵀ: q_proj.weight rows h·k:(h+1)·k are (W_Q^h)ᵀ, o_proj.weight is W_Oᵀ.
        for proj, factor in ((attn.q_proj, f.w_q), (attn.k_proj, f.w_k), (attn.v_proj, f.w_v), (attn.o_proj, f.w_o)):
            if factor is not None:
                write(proj.weight, factor.T)
                zero_(proj.bias)  # biases are not part of the products (our reading; native init zeroes them too)

    def _init_positions(self, embeddings: ViTEmbeddings, cfg: MimeticConfig) -> None:
        table = embeddings.position_embeddings
        if table is None or not writable(table):
            return
        patches = embeddings.patch_embeddings
        grid_h = patches.image_size[0] // patches.patch_size[0]
        grid_w = patches.image_size[1] // patches.patch_size[1]
        values = torch.zeros(table.shape, dtype=torch.float32)  # the CLS position (row 0) stays zero, as in MAE
        values[0, 1:] = cfg.position_scale * sinusoidal_2d(grid_h, grid_w, table.shape[-1])
        write(table, values)
        freeze_if(table, cfg.freeze_position_embeddings)

    def layer_products(self, model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer: ``(W_Q^h W_K^hᵀ for each head (H, d, d), W_V W_O (d, d))`` recomputed from the weights."""
        products = []
        for layer in model.base_model.layers:
            attn = layer.attention
            num_heads, head_dim = attn.num_attention_heads, attn.head_dim
            q = attn.q_proj.weight.detach().float().view(num_heads, head_dim, -1)  # (W_Q^h)ᵀ per head
            k = attn.k_proj.weight.detach().float().view(num_heads, head_dim, -1)
            products.append((q.mT @ k, attn.v_proj.weight.detach().float().T @ attn.o_proj.weight.detach().float().T))
        return products


class GPT2Adapter(Adapter):
    """GPT-2: ``h[i].attn.c_attn`` (Conv1D, weight (d, 3d) = [W_Q | W_K | W_V]), ``c_proj`` (d, d), ``wpe``."""

    family = "gpt2"
    base_class = GPT2PreTrainedModel

    def check_config(self, config) -> None:
        check_heads(config.hidden_size, config.num_attention_heads, config.hidden_size // config.num_attention_heads)

    def init_module(self, model: nn.Module, module: nn.Module, cfg: MimeticConfig) -> None:
        # Only self-attention: cross-attention (add_cross_attention=True) keeps its native init.
        if isinstance(module, GPT2Attention) and not module.is_cross_attention:
            if cfg.selects(module.layer_idx):
                self._init_attention(module, cfg)
        elif isinstance(module, GPT2MLP):
            if cfg.selects(self._mlp_index(model, module)):
                add_mean(module.c_fc.weight, cfg.mlp_mean)
        elif isinstance(module, GPT2Model) and cfg.position_embeddings:
            self._init_positions(module, cfg)

    def target_modules(self, model: nn.Module) -> Iterator[nn.Module]:
        base = model.base_model
        yield base
        for block in base.h:
            yield block.attn
            yield block.mlp

    @staticmethod
    def _mlp_index(model: nn.Module, module: nn.Module) -> int:
        for index, block in enumerate(model.base_model.h):
            if module is block.mlp:
                return index
        raise RuntimeError(f"GPT2MLP is not in {type(model).__name__}.h")

    def _init_attention(self, attn: GPT2Attention, cfg: MimeticConfig) -> None:
        if not (writable(attn.c_attn.weight) or writable(attn.c_proj.weight)):
            return
        d = attn.embed_dim
        f = layer_factors(cfg, attn.num_heads, d, attn.head_dim, attn.c_attn.weight.device)
        # Conv1D stores W itself (y = x W): c_attn.weight columns [0:d] = W_Q, [d:2d] = W_K, [2d:3d] = W_V.
        new_c_attn = attn.c_attn.weight.detach().float().clone()
        for block, factor in enumerate((f.w_q, f.w_k, f.w_v)):
            if factor is not None:
                new_c_attn[:, block * d : (block + 1) * d] = factor
        if cfg.qk or cfg.vo:
            write(attn.c_attn.weight, new_c_attn)
            zero_(attn.c_attn.bias)
        if f.w_o is not None:
            write(attn.c_proj.weight, f.w_o)  # replaces GPT-2's 1/√(2L) residual rescale of c_proj: W_V W_O is exact
            zero_(attn.c_proj.bias)

    def _init_positions(self, base: GPT2Model, cfg: MimeticConfig) -> None:
        table = base.wpe.weight
        if writable(table):
            write(table, cfg.position_scale * sinusoidal_1d(table.shape[0], table.shape[1]))
            freeze_if(table, cfg.freeze_position_embeddings)

    def layer_products(self, model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer: ``(W_Q^h W_K^hᵀ for each head (H, d, d), W_V W_O (d, d))`` recomputed from the weights."""
        products = []
        for block in model.base_model.h:
            attn = block.attn
            d, num_heads, head_dim = attn.embed_dim, attn.num_heads, attn.head_dim
            w = attn.c_attn.weight.detach().float()
            q = w[:, :d].view(d, num_heads, head_dim).permute(1, 0, 2)  # W_Q^h, (H, d, k)
            k = w[:, d : 2 * d].view(d, num_heads, head_dim).permute(1, 0, 2)
            products.append((q @ k.mT, w[:, 2 * d :] @ attn.c_proj.weight.detach().float()))
        return products
