"""User-supplied encoder and decoder trunks: how they are built and the shape contract."""

import copy
import inspect

import torch
from torch import nn

__all__ = ["NETWORKS", "NetworkParamsMixin", "UserTrunk", "build_trunk", "route_network_params"]

# Estimator parameters that take a user network, and the size each is built with.
NETWORKS = {"encoder": "n_inputs", "decoder": "n_components"}


def route_network_params(params):
    """Split ``encoder__name`` and ``decoder__name`` keys off ``params``.

    Returns the remaining parameters and, for each network, the dict of its
    routed keyword arguments (the name after ``__``).
    """
    routed = {network: {} for network in NETWORKS}
    rest = {}
    for key, value in params.items():
        network, separator, name = key.partition("__")
        if separator and network in routed:
            routed[network][name] = value
        else:
            rest[key] = value
    return rest, routed


def build_trunk(role, network, params, size):
    """The trunk for ``role`` ("encoder" or "decoder"), as a :class:`UserTrunk`.

    ``network`` is the estimator parameter: a ``torch.nn.Module`` instance,
    used as a deep copy of itself, or a class (any callable returning a
    module), called as ``network(<size name>=size, **params)``.
    """
    size_name = NETWORKS[role]
    params = {} if params is None else params
    if isinstance(network, nn.Module):
        if params:
            raise ValueError(
                f"{role}_params={params!r} are keyword arguments for building the {role}, "
                f"but {role} is a module instance ({type(network).__name__}), which is used "
                f"as it is. Pass its class as {role} to build it with them, or set "
                f"{role}_params=None."
            )
        module = copy.deepcopy(network)
    else:
        name = getattr(network, "__name__", repr(network))
        try:
            inspect.signature(network).bind(**{size_name: size}, **params)
        except TypeError as exc:
            raise TypeError(
                f"{role}={name} cannot be called as {name}({size_name}={size}, "
                f"**{role}_params) with {role}_params={params!r}: {exc}. Its __init__ must "
                f"take the keyword argument {size_name} and each key of {role}_params."
            ) from None
        except ValueError:  # no signature to inspect (some builtins): just call it
            pass
        module = network(**{size_name: size}, **params)
        if not isinstance(module, nn.Module):
            raise TypeError(
                f"{role}={name} returned {type(module).__name__}, not a torch.nn.Module."
            )
    # Built on the CPU in float32, as the library's own layers; skorch moves it to `device`.
    return UserTrunk(role, module.to(device="cpu", dtype=torch.float32), size)


class UserTrunk(nn.Module):
    """A user network mapping ``(n_rows, n_inputs)`` to ``(n_rows, n_outputs)``, checked.

    Its output width ``n_outputs`` is found by a dry run on two zero rows, in
    eval mode and without gradients (lazy modules are initialised by it).
    Leading sample dimensions of the input are flattened into rows and
    restored on the output, so the user network always sees a matrix.
    """

    def __init__(self, role, network, n_inputs):
        super().__init__()
        self.role = role
        self.network = network
        self.n_inputs = n_inputs
        self.n_outputs = None
        training = network.training
        with torch.no_grad():
            network.eval()
            dry_run = torch.zeros(2, n_inputs)
            self.n_outputs = self._check(network(dry_run), dry_run).shape[1]
        network.train(training)

    def _check(self, h, x):
        """``h``, or a clear error when it is not one hidden vector per row of ``x``."""
        name = type(self.network).__name__
        if not isinstance(h, torch.Tensor):
            raise TypeError(
                f"The {self.role} {name} returned {type(h).__name__}; its forward must return "
                "one tensor of shape (n_rows, n_hidden)."
            )
        rows = x.shape[0]
        if h.ndim != 2 or h.shape[0] != rows or h.shape[1] == 0:
            raise ValueError(
                f"The {self.role} {name} returned a tensor of shape {tuple(h.shape)} for an "
                f"input of shape {tuple(x.shape)}; it must return shape ({rows}, n_hidden), "
                "one non-empty hidden vector per row. Flatten its output, for example with "
                "torch.nn.Flatten()."
            )
        if self.n_outputs is not None and h.shape[1] != self.n_outputs:
            raise ValueError(
                f"The {self.role} {name} returned {h.shape[1]} hidden units per row, but "
                f"{self.n_outputs} when its width was measured at fit; the width must not "
                "depend on the input."
            )
        return h

    def forward(self, x):
        rows = x.reshape(-1, x.shape[-1])
        h = self._check(self.network(rows), rows)
        return h.reshape(*x.shape[:-1], h.shape[1])


class NetworkParamsMixin:
    """``get_params`` and ``set_params`` that expose a custom network's keyword arguments.

    For an estimator with ``encoder``/``encoder_params`` and
    ``decoder``/``decoder_params`` parameters: each entry of a ``*_params``
    dict is also the nested parameter ``encoder__<name>`` (or
    ``decoder__<name>``), so ``GridSearchCV`` can search it.
    """

    def get_params(self, deep=True):
        """Get parameters for this estimator.

        Parameters
        ----------
        deep : bool, default=True
            If True, also return the keyword arguments of a custom
            ``encoder`` and ``decoder`` as ``encoder__<name>`` and
            ``decoder__<name>``.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        params = super().get_params(deep=deep)
        if deep:
            for network in NETWORKS:
                kwargs = params[f"{network}_params"]
                if isinstance(kwargs, dict):
                    params.update({f"{network}__{key}": v for key, v in kwargs.items()})
        return params

    def set_params(self, **params):
        """Set the parameters of this estimator.

        ``encoder__<name>`` and ``decoder__<name>`` set one keyword argument
        of a custom network, an entry of ``encoder_params`` or
        ``decoder_params`` (a new dict; the one passed in is not modified).

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : estimator instance
            The estimator.
        """
        params, routed = route_network_params(params)
        super().set_params(**params)
        for network, kwargs in routed.items():
            if kwargs:
                current = getattr(self, f"{network}_params")
                current = current if isinstance(current, dict) else {}
                setattr(self, f"{network}_params", {**current, **kwargs})
        return self
