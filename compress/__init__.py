"""Compression of trained models: pruning, quantization and distillation.

Functions over ``nn.Module`` that work on any checkpoint, not only on searched subnets. The
package is empty until the compression functions land; importing it is safe.
"""

from __future__ import annotations

__all__: list[str] = []
