"""Where and how to attach a fingerprint module: one typed config, validated when it is built."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from freqprint.errors import InvalidArgument

__all__ = ["LAYOUTS", "MERGES", "FingerprintConfig"]

MERGES = ("relu", "linear")
LAYOUTS = ("auto", "tokens", "features")


@dataclass
class FingerprintConfig:
    """Where and how to attach a fingerprint module (defaults from the paper).

    Attributes:
        target: dotted name of the host ``nn.Conv2d`` (e.g. ``"layer1.1.conv2"``).
        secret: the owner's secret; derives the module's initial weights. Never stored in files.
        filters: D, the number of fingerprint filters (paper: 256).
        kernel_size: K (paper: 3).
        radius: r of the low-pass band (paper: 1; r = 2 protects far less).
        implementation: ``"fft"`` (exact and fast) or ``"spatial"`` (explicit circular conv).
        merge: ``"relu"`` (default: few symmetries, see the module docstring) or ``"linear"``.
        prefix_tokens: Transformer hosts only — leading tokens the module neither reads nor writes
            (1 for ViT's class token; 0 for BERT, whose whole sequence, [CLS] included, is laid out).
        token_grid: Transformer hosts only — the ``(M, N)`` grid the tokens are laid out on; default
            the smallest square holding the example input's tokens (see :class:`FingerprintedTokens`).
        layout: Transformer hosts only — ``"tokens"`` (positions on a grid: BERT, ViT), ``"features"``
            (each token's features on their own grid, causal: decoders, see
            :class:`FingerprintedFeatures`), or ``"auto"``: features for a causal language model.
        feature_grid: the ``(M, N)`` grid of the features layout (``H = C·M·N``); default the
            smallest square side ≥ 4 whose square divides H (:func:`feature_grid`).
    """

    target: str
    secret: str | None = None
    filters: int = 256
    kernel_size: int = 3
    radius: int = 1
    implementation: str = "fft"
    merge: str = "relu"
    prefix_tokens: int = 0
    token_grid: tuple[int, int] | None = None
    layout: str = "auto"
    feature_grid: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.token_grid is not None:  # JSON gives a list
            self.token_grid = (int(self.token_grid[0]), int(self.token_grid[1]))
        if self.feature_grid is not None:
            self.feature_grid = (int(self.feature_grid[0]), int(self.feature_grid[1]))
        if self.layout not in LAYOUTS:
            raise InvalidArgument(f"layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.layout == "tokens" and self.feature_grid is not None:
            raise InvalidArgument("feature_grid applies to the features layout, not to tokens")
        if self.layout == "features" and (self.token_grid is not None or int(self.prefix_tokens)):
            raise InvalidArgument("token_grid and prefix_tokens apply to the tokens layout, not to features")
        if int(self.prefix_tokens) < 0:
            raise InvalidArgument(f"prefix_tokens must be >= 0, got {self.prefix_tokens}")
        if self.merge not in MERGES:
            raise InvalidArgument(f"merge must be one of {', '.join(MERGES)}, got {self.merge!r}")
        if self.implementation not in ("fft", "spatial"):
            raise InvalidArgument(f"implementation must be 'fft' or 'spatial', got {self.implementation!r}")
        if int(self.filters) < 1 or int(self.kernel_size) < 1 or int(self.radius) < 0:
            raise InvalidArgument(
                f"filters and kernel_size must be >= 1 and radius >= 0, got {self.filters}, {self.kernel_size}, {self.radius}"
            )

    def to_dict(self, include_secret: bool = False) -> dict:
        d = asdict(self)
        if not include_secret:
            d.pop("secret")
        return d
