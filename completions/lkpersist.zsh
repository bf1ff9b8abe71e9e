#compdef lkpersist

_lkpersist_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _LKPERSIST_COMPLETE=complete_zsh lkpersist)
}

compdef _lkpersist_completion lkpersist
