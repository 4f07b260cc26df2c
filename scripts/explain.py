"""Check the tutorials' worked examples against torch, or walk through one step by step.

    python scripts/explain.py                          # every example, ends "N/N examples match"
    python scripts/explain.py example=tconv1d_stride   # every step, plus scatter.png
    python scripts/explain.py input=[1,2,3] weight=[1,0,-1] stride=2 padding=1 output_padding=1
    python scripts/explain.py conv=conv1d input=[1,2,3,4,5,6] weight=[2,2,2] padding=1
    python scripts/explain.py 'input=[[1,2],[3,4]]' 'weight=[[1,0,-1],[1,1,1]]'   # 2 channels in

Custom shapes, for conv=transpose and conv=conv1d alike (no batch axis):
    input   (L) for one channel, or (C_in, L): one list of samples per input channel
    weight  (k): one channel in and out; (C_in, k): one row of taps per input channel, one
            channel out; or torch's own layout: ConvTranspose1d (C_in, C_out, k),
            Conv1d (C_out, C_in, k)
    bias    one number per output channel (a bare number when there is one)
From Python: convscope.explain(...) returns the same text (and the output, and the picture).

Exit status: 0, 1 if an example does not match, 2 on bad input (one `error:` line on stderr).
"""

from convscope.commands import explain_command

if __name__ == "__main__":
    explain_command()
