from sf_intuser.cli import entry

if __name__ == "__main__":
    entry()
