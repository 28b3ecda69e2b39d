"""xarray DataArrays and Datasets: keyed by dims, values, coordinates, names and attrs.

Every variable (data and coordinates) is keyed by its dims, its values (numpy buffers hashed in
place, through the numpy handler) and its attrs; a DataArray by its name too, a Dataset by its
data variables and coordinates by name (not by order) and its attrs. ``encoding`` (how a file
was read) is not part of the key. Stored with pickle, which keeps all of it.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from . import TypeHandler, add

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


add(TypeHandler(xr.DataArray, data_array_key))
add(TypeHandler(xr.Dataset, dataset_key))
add(TypeHandler(xr.Variable, variable_key))
