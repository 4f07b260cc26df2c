"""`python -m convscope <command> [overrides]`: the `convscope` command (commands_main.py)."""

from convscope.commands_main import main_command

if __name__ == "__main__":
    main_command()
