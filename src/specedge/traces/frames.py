"""DataFrame <-> Arrow table conversions used by the store (named failures, nullable integers kept integer)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from specedge.errors import InputError, TraceValidationError


def frame_to_table(frame: pd.DataFrame | pa.Table, where: str) -> pa.Table:
    """A DataFrame (or Table) as an Arrow table, with conversion failures named by column."""
    if isinstance(frame, pa.Table):
        return frame
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{where}: expected a pandas DataFrame or a pyarrow Table, got {type(frame).__name__}")
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        column = next((c for c in frame.columns if f"'{c}'" in str(exc)), None)
        field_words = f"field '{column}'" if column is not None else "a column"
        raise TraceValidationError(f"{where}: {field_words} has values of mixed or unsupported types ({exc})") from None


_PANDAS_NULLABLE_INT = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
}


def table_to_frame(table: pa.Table, schema: pa.Schema | None = None) -> pd.DataFrame:
    """Arrow table to DataFrame: integer fields that the schema marks nullable (or that hold nulls) become
    pandas nullable integers, never floats; every other column converts the default way."""
    nullable_ints = [
        f.name for f in table.schema
        if pa.types.is_integer(f.type)
        and ((schema is not None and f.name in schema.names and schema.field(f.name).nullable)
             or table.column(f.name).null_count)
    ]
    frame = table.drop_columns(nullable_ints).to_pandas() if nullable_ints else table.to_pandas()
    for name in nullable_ints:
        frame[name] = table.column(name).to_pandas(types_mapper=_PANDAS_NULLABLE_INT.get)
    return frame[table.column_names] if nullable_ints else frame
