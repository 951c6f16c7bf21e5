"""Built-in loss plugins: every term of the paper's objective (section 4.2, equations 4-11) plus two
regularisers, one module each; `facerep.nn.loss_utils` holds the shared row selection and NaN/Inf checks."""
