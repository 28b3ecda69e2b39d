"""xarray DataArrays and Datasets: keyed by dims, values, coordinates, names and attrs.

Every variable (data and coordinates) is keyed by its dims, its values (numpy buffers hashed in
place, through the numpy handler) and its attrs; a DataArray by its name too, a Dataset by its
data variables and coordinates by name (not by order) and its attrs. ``encoding`` (how a file
was read) is not part of the key.

Stored as pickle with the variables' numpy buffers laid out raw after it (codec
``xarray:DataArray``, ``xarray:Dataset``, ``xarray:Variable``, see ``pickled_buffers``): everything pickle keeps comes back
exactly, and a large value is read memory-mapped, each variable viewing its bytes in the file.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from . import TypeHandler, add, pickled_buffers

__all__ = ["variable_key"]


def variable_key(variable: xr.Variable) -> tuple:
    return (tuple(variable.dims), np.asarray(variable.values), variable.attrs)


def _coords_key(coords) -> dict:
    return {name: variable_key(coord.variable) for name, coord in coords.items()}


def data_array_key(array: xr.DataArray) -> tuple:
    return (array.name, variable_key(array.variable), _coords_key(array.coords))


def dataset_key(dataset: xr.Dataset) -> tuple:
    data = {name: variable_key(var.variable) for name, var in dataset.data_vars.items()}
    return (data, _coords_key(dataset.coords), dataset.attrs)


def _handler(kind, key) -> TypeHandler:
    codec = f"xarray:{kind.__name__}"
    return TypeHandler(kind, key, pickled_buffers.dumps, pickled_buffers.loads, codec, pickled_buffers.load_file)


add(_handler(xr.DataArray, data_array_key))
add(_handler(xr.Dataset, dataset_key))
add(_handler(xr.Variable, variable_key))
