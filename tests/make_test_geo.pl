#!/usr/bin/perl
# make_test_geo.pl OUT.mmdb LAYOUT - a tiny MaxMind DB for test_edge_privacy.
#
# LAYOUT "geolite2": GeoLite2-City fields (country.iso_code,
# subdivisions[].names.en, city.names.en); "ipldb": the @ip-location-db
# city layout (country_code, state1, city as plain strings). Both hold the
# same three networks (documentation ranges, so nothing real):
#   192.0.2.0/24      DE / Bavaria / München  (IPv4, also via ::ffff:0:0/96)
#   2001:db8:1::/48   JP / Tokyo / Shibuya    (IPv6)
#   198.51.100.0/24   FR, no region or city   (country only)
# Needs Debian's libmaxmind-db-writer-perl.
use strict;
use warnings;
use utf8;
use MaxMind::DB::Writer::Tree;

my ( $out, $layout ) = @ARGV;
die "usage: $0 OUT.mmdb geolite2|ipldb\n"
  unless $out && $layout && $layout =~ /^(geolite2|ipldb)$/;

my %rows = (
	'192.0.2.0/24'    => [ 'DE', 'Bavaria', 'München' ],
	'2001:db8:1::/48' => [ 'JP', 'Tokyo',   'Shibuya' ],
	'198.51.100.0/24' => [ 'FR', undef,     undef ],
);

my %types = $layout eq 'geolite2'
  ? (
	country      => 'map',
	iso_code     => 'utf8_string',
	subdivisions => [ 'array', 'map' ],
	names        => 'map',
	en           => 'utf8_string',
	city         => 'map',
  )
  : (
	country_code => 'utf8_string',
	state1       => 'utf8_string',
	city         => 'utf8_string',
  );

my $tree = MaxMind::DB::Writer::Tree->new(
	ip_version               => 6,
	record_size              => 24,
	database_type            => $layout eq 'geolite2' ? 'GeoLite2-City' : 'ipldb-city',
	languages                => ['en'],
	description              => { en => "alog test database ($layout)" },
	alias_ipv6_to_ipv4       => 1,
	remove_reserved_networks => 0,
	map_key_type_callback    => sub { $types{ $_[0] } },
);

for my $net ( sort keys %rows ) {
	my ( $cc, $region, $city ) = @{ $rows{$net} };
	my %rec;
	if ( $layout eq 'geolite2' ) {
		$rec{country}      = { iso_code => $cc };
		$rec{subdivisions} = [ { names => { en => $region } } ] if defined $region;
		$rec{city}         = { names => { en => $city } } if defined $city;
	} else {
		$rec{country_code} = $cc;
		$rec{state1}       = $region if defined $region;
		$rec{city}         = $city if defined $city;
	}
	$tree->insert_network( $net, \%rec );
}

open my $fh, '>:raw', $out or die "$out: $!\n";
$tree->write_tree($fh);
close $fh or die "$out: $!\n";
