"""Check the tutorials' worked examples against torch, or walk through one step by step.

    python scripts/explain.py                          # every example, ends "N/N examples match"
    python scripts/explain.py example=tconv1d_stride   # every step, plus scatter.png
    python scripts/explain.py input=[1,2,3] weight=[1,0,-1] stride=2 padding=1 output_padding=1
    python scripts/explain.py conv=conv1d input=[1,2,3,4,5,6] weight=[2,2,2] padding=1

Exit status: 0, 1 if an example does not match, 2 on bad input (one `error:` line on stderr).
"""

from convscope.commands import explain_main

if __name__ == "__main__":
    explain_main()
