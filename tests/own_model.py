"""A model of a user's own, written the way users write them (not a transformers family): a small ViT-like encoder
over tokens with its own attention class (one fused ``qkv`` projection, rows ``[Q heads | K heads | V heads]``), its
own MLP class, and a classification head model around the bare model. It declares its layouts with
``MimeticInitMixin``. Saved with ``register_for_auto_class``, it loads with ``trust_remote_code=True``."""

from __future__ import annotations

import torch
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel
from transformers import initialization as init

from hf_mimetic import MimeticInitMixin
from hf_mimetic.layouts import FirstMLPLayer, FusedQKV


class OwnConfig(PretrainedConfig):
    model_type = "own_encoder"

    def __init__(self, hidden_size: int = 64, num_layers: int = 3, num_heads: int = 4, vocab_size: int = 32,
                 num_labels: int = 3, **kwargs) -> None:  # fmt: skip
        self.hidden_size, self.num_layers, self.num_heads, self.vocab_size = hidden_size, num_layers, num_heads, vocab_size
        super().__init__(num_labels=num_labels, **kwargs)


class OwnAttention(nn.Module):
    def __init__(self, config: OwnConfig) -> None:
        super().__init__()
        self.num_heads, self.head_dim = config.num_heads, config.hidden_size // config.num_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        attention = torch.softmax(q @ k.mT / self.head_dim**0.5, dim=-1)
        return self.proj((attention @ v).transpose(1, 2).reshape(batch, length, width))


class OwnMLP(nn.Module):
    def __init__(self, config: OwnConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, 2 * config.hidden_size)
        self.fc2 = nn.Linear(2 * config.hidden_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(nn.functional.gelu(self.fc1(x)))


class OwnBlock(nn.Module):
    def __init__(self, config: OwnConfig) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(config.hidden_size), nn.LayerNorm(config.hidden_size)
        self.attention, self.mlp = OwnAttention(config), OwnMLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class OwnPreTrainedModel(MimeticInitMixin, PreTrainedModel):
    config_class = OwnConfig
    base_model_prefix = "encoder"
    mimetic_preset = "vision"
    mimetic_layouts = (FusedQKV(("OwnAttention",), "qkv", "proj", "blocks", "head_dim"), FirstMLPLayer({"OwnMLP": "fc1"}))

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            init.normal_(module.weight, std=0.02)
            if getattr(module, "bias", None) is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)


class OwnModel(OwnPreTrainedModel):
    def __init__(self, config: OwnConfig) -> None:
        super().__init__(config)
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.blocks = nn.ModuleList(OwnBlock(config) for _ in range(config.num_layers))
        self.post_init()

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(input_ids)
        for block in self.blocks:
            x = block(x)
        return x


class OwnForClassification(OwnPreTrainedModel):
    def __init__(self, config: OwnConfig) -> None:
        super().__init__(config)
        self.encoder = OwnModel(config)
        self.head = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(input_ids).mean(1))
