"""cqi-warehouse: data pipeline and warehouse for clinical registry collaboratives."""
