raise RuntimeError("this URLconf cannot be imported")
