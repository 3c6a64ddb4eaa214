"""Print the config-key and transform-op reference tables (Markdown) that README's "Config
reference" section shows: python tools/config_reference.py"""
import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))


def main():
    from paddle_dx.config.reference import schema_table
    from paddle_dx.data.op_reference import ops_table
    print(schema_table())
    print()
    print(ops_table())


if __name__ == "__main__":
    main()
